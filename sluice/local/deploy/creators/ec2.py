"""The networking a Batch compute environment needs: VPC, subnets, security groups,
internet gateway, routes, NAT, endpoints. moto checks that a compute environment's
subnets and security groups exist, so they are created in moto's EC2."""

from __future__ import annotations

from typing import Any

from sluice.local.deploy.creators.base import CreateContext, Creator, is_true
from sluice.local.deploy.model import Created


def _tag_specs(resource_type: str, props: dict[str, Any]) -> dict[str, Any]:
    tags = props.get("Tags")
    return {"TagSpecifications": [{"ResourceType": resource_type, "Tags": tags}]} if tags else {}


def create_vpc(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    vpc = ctx.call(
        logical_id,
        "ec2",
        "CreateVpc",
        props,
        exclude={"EnableDnsHostnames", "EnableDnsSupport", "Tags"},
        extra=_tag_specs("vpc", props),
    )["Vpc"]
    ec2 = ctx.client("ec2")
    vpc_id = vpc["VpcId"]
    for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
        if attribute in props:
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute: {"Value": is_true(props[attribute])}})
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    acls = ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default", "Values": ["true"]}]
    )["NetworkAcls"]
    return Created(
        vpc_id,
        {
            "VpcId": vpc_id,
            "CidrBlock": vpc["CidrBlock"],
            "CidrBlockAssociations": [a["AssociationId"] for a in vpc.get("CidrBlockAssociationSet", [])],
            "DefaultSecurityGroup": groups[0]["GroupId"] if groups else None,
            "DefaultNetworkAcl": acls[0]["NetworkAclId"] if acls else None,
            "Ipv6CidrBlocks": [],
        },
    )


def create_subnet(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    subnet = ctx.call(
        logical_id,
        "ec2",
        "CreateSubnet",
        props,
        exclude={"MapPublicIpOnLaunch", "Tags"},
        extra=_tag_specs("subnet", props),
    )["Subnet"]
    if is_true(props.get("MapPublicIpOnLaunch")):
        ctx.client("ec2").modify_subnet_attribute(
            SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True}
        )
    return Created(
        subnet["SubnetId"],
        {
            "SubnetId": subnet["SubnetId"],
            "AvailabilityZone": subnet["AvailabilityZone"],
            "AvailabilityZoneId": subnet.get("AvailabilityZoneId"),
            "VpcId": subnet["VpcId"],
            "CidrBlock": subnet["CidrBlock"],
            "Ipv6CidrBlocks": [],
        },
    )


def ip_permission(rule: dict[str, Any], peer_key: str) -> dict[str, Any]:
    """CloudFormation's flat security-group rule -> the API's IpPermission."""
    perm: dict[str, Any] = {"IpProtocol": str(rule["IpProtocol"])}
    if perm["IpProtocol"] not in ("-1", "all"):
        for key in ("FromPort", "ToPort"):
            if key in rule:
                perm[key] = int(rule[key])
    desc = {"Description": rule["Description"]} if "Description" in rule else {}
    if "CidrIp" in rule:
        perm["IpRanges"] = [{"CidrIp": rule["CidrIp"], **desc}]
    if "CidrIpv6" in rule:
        perm["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"], **desc}]
    if f"{peer_key}SecurityGroupId" in rule:
        perm["UserIdGroupPairs"] = [{"GroupId": rule[f"{peer_key}SecurityGroupId"], **desc}]
    if f"{peer_key}PrefixListId" in rule:
        perm["PrefixListIds"] = [{"PrefixListId": rule[f"{peer_key}PrefixListId"], **desc}]
    return perm


def create_security_group(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    ec2 = ctx.client("ec2")
    name = props.get("GroupName") or ctx.name(logical_id, max_length=255)
    request: dict[str, Any] = {"GroupName": name, "Description": props["GroupDescription"]}
    if "VpcId" in props:
        request["VpcId"] = props["VpcId"]
    request.update(_tag_specs("security-group", props))
    group_id = ec2.create_security_group(**request)["GroupId"]
    ingress = [ip_permission(r, "Source") for r in props.get("SecurityGroupIngress") or []]
    if ingress:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=ingress)
    if "SecurityGroupEgress" in props and "VpcId" in props:
        # Given egress rules replace the default allow-all rule, as CloudFormation does.
        ec2.revoke_security_group_egress(
            GroupId=group_id, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        )
        egress = [ip_permission(r, "Destination") for r in props["SecurityGroupEgress"]]
        if egress:
            ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=egress)
    return Created(group_id, {"GroupId": group_id, "VpcId": props.get("VpcId")})


def create_sg_ingress(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    ctx.client("ec2").authorize_security_group_ingress(
        GroupId=props["GroupId"], IpPermissions=[ip_permission(props, "Source")]
    )
    return Created(ctx.name(logical_id))


def create_sg_egress(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    ctx.client("ec2").authorize_security_group_egress(
        GroupId=props["GroupId"], IpPermissions=[ip_permission(props, "Destination")]
    )
    return Created(ctx.name(logical_id))


def create_internet_gateway(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    igw = ctx.client("ec2").create_internet_gateway(**_tag_specs("internet-gateway", props))[
        "InternetGateway"
    ]
    return Created(igw["InternetGatewayId"], {"InternetGatewayId": igw["InternetGatewayId"]})


def create_gateway_attachment(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    ec2 = ctx.client("ec2")
    if "InternetGatewayId" in props:
        ec2.attach_internet_gateway(InternetGatewayId=props["InternetGatewayId"], VpcId=props["VpcId"])
    if "VpnGatewayId" in props:
        ec2.attach_vpn_gateway(VpnGatewayId=props["VpnGatewayId"], VpcId=props["VpcId"])
    return Created(ctx.name(logical_id))


def create_route_table(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    table = ctx.call(
        logical_id, "ec2", "CreateRouteTable", props, exclude={"Tags"}, extra=_tag_specs("route-table", props)
    )["RouteTable"]
    return Created(table["RouteTableId"], {"RouteTableId": table["RouteTableId"]})


def create_route(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    ctx.call(logical_id, "ec2", "CreateRoute", props)
    return Created(ctx.name(logical_id))


def create_route_association(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    response = ctx.call(logical_id, "ec2", "AssociateRouteTable", props)
    return Created(response["AssociationId"], {"Id": response["AssociationId"]})


def create_eip(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    response = ctx.client("ec2").allocate_address(
        Domain=props.get("Domain", "vpc"), **_tag_specs("elastic-ip", props)
    )
    return Created(
        response["PublicIp"], {"AllocationId": response["AllocationId"], "PublicIp": response["PublicIp"]}
    )


def create_nat_gateway(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    nat = ctx.call(
        logical_id, "ec2", "CreateNatGateway", props, exclude={"Tags"}, extra=_tag_specs("natgateway", props)
    )["NatGateway"]
    return Created(nat["NatGatewayId"], {"NatGatewayId": nat["NatGatewayId"]})


def create_vpc_endpoint(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    endpoint = ctx.call(logical_id, "ec2", "CreateVpcEndpoint", props)["VpcEndpoint"]
    return Created(
        endpoint["VpcEndpointId"],
        {
            "Id": endpoint["VpcEndpointId"],
            "DnsEntries": [
                f"{e.get('HostedZoneId', '')}:{e.get('DnsName', '')}" for e in endpoint.get("DnsEntries", [])
            ],
            "NetworkInterfaceIds": endpoint.get("NetworkInterfaceIds", []),
        },
    )


CREATORS: dict[str, Creator] = {
    "AWS::EC2::VPC": create_vpc,
    "AWS::EC2::Subnet": create_subnet,
    "AWS::EC2::SecurityGroup": create_security_group,
    "AWS::EC2::SecurityGroupIngress": create_sg_ingress,
    "AWS::EC2::SecurityGroupEgress": create_sg_egress,
    "AWS::EC2::InternetGateway": create_internet_gateway,
    "AWS::EC2::VPCGatewayAttachment": create_gateway_attachment,
    "AWS::EC2::RouteTable": create_route_table,
    "AWS::EC2::Route": create_route,
    "AWS::EC2::SubnetRouteTableAssociation": create_route_association,
    "AWS::EC2::EIP": create_eip,
    "AWS::EC2::NatGateway": create_nat_gateway,
    "AWS::EC2::VPCEndpoint": create_vpc_endpoint,
}
