"""CloudFormation intrinsic functions, conditions and dependency discovery.

Semantics follow the CloudFormation "Intrinsic function reference"
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html).
Errors are :class:`DeployError` naming the resource (or section) being evaluated.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, cast

from sluice.local.deploy.errors import DeployError
from sluice.local.deploy.model import Created


class _NoValue:
    """``AWS::NoValue``: removes the property (or list element) it stands in for."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

_SUB_VAR = re.compile(r"\$\{([^}]*)\}")

# Intrinsics usable in Conditions only (plus Fn::If, which is usable everywhere).
_CONDITION_FUNCS = {"Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Condition"}


def is_intrinsic(value: Any) -> bool:
    """True for a one-key mapping whose key is ``Ref`` or ``Fn::...``."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key,) = value
    return key == "Ref" or (isinstance(key, str) and key.startswith("Fn::"))


def _scalar_text(value: Any, where: str, context: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise DeployError(
        where, f"Template error: {context} must resolve to a string, got {type(value).__name__}"
    )


class Evaluator:
    """Resolves intrinsics against parameters, pseudo-parameters, conditions, mappings
    and the resources created so far."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        pseudo: Mapping[str, Any],
        conditions: Mapping[str, Any],
        mappings: Mapping[str, Any],
        resources: Mapping[str, Any],
        get_azs: Callable[[str], list[str]],
    ) -> None:
        self.parameters = parameters
        self.pseudo = pseudo
        self.condition_defs = conditions
        self.mappings = mappings
        self.resource_defs = resources
        self.get_azs = get_azs
        self.created: dict[str, Created] = {}
        self._condition_values: dict[str, bool] = {}
        self._evaluating: list[str] = []

    # ----------------------------------------------------------------- conditions
    def condition(self, name: str, where: str) -> bool:
        if not isinstance(name, str) or name not in self.condition_defs:
            raise DeployError(where, f"Template error: unresolved condition dependency {name!r}")
        if name in self._condition_values:
            return self._condition_values[name]
        if name in self._evaluating:
            cycle = " -> ".join([*self._evaluating, name])
            raise DeployError(f"Conditions.{name}", f"Template error: circular condition dependency {cycle}")
        self._evaluating.append(name)
        try:
            result = self._condition_expr(self.condition_defs[name], f"Conditions.{name}")
        finally:
            self._evaluating.pop()
        self._condition_values[name] = result
        return result

    def all_conditions(self) -> dict[str, bool]:
        return {name: self.condition(name, f"Conditions.{name}") for name in self.condition_defs}

    def _condition_expr(self, expr: Any, where: str) -> bool:
        if isinstance(expr, bool):
            return expr
        if isinstance(expr, str) and expr.lower() in ("true", "false"):
            return expr.lower() == "true"
        if not isinstance(expr, dict) or len(expr) != 1:
            raise DeployError(
                where, f"Template error: a condition must be a condition function, got {expr!r}"
            )
        ((func, args),) = expr.items()
        if func == "Condition":
            return self.condition(args, where)
        if func == "Fn::Equals":
            if not isinstance(args, list) or len(args) != 2:
                raise DeployError(where, "Template error: Fn::Equals takes a list of two values")
            left, right = (self.evaluate(arg, where) for arg in args)
            return cast(bool, self._normalise(left) == self._normalise(right))
        if func == "Fn::Not":
            if not isinstance(args, list) or len(args) != 1:
                raise DeployError(where, "Template error: Fn::Not takes a list of one condition")
            return not self._condition_expr(args[0], where)
        if func in ("Fn::And", "Fn::Or"):
            if not isinstance(args, list) or not 2 <= len(args) <= 10:
                raise DeployError(where, f"Template error: {func} takes a list of 2 to 10 conditions")
            values = [self._condition_expr(arg, where) for arg in args]
            return all(values) if func == "Fn::And" else any(values)
        if func == "Fn::If":
            value = self.evaluate(expr, where)
            return self._condition_expr(value, where)
        raise DeployError(where, f"Template error: {func} is not a condition function")

    @staticmethod
    def _normalise(value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, list):
            return [Evaluator._normalise(v) for v in value]
        return value

    def resource_active(self, logical_id: str) -> bool:
        """Whether a resource's ``Condition`` (if any) holds."""
        cond = self.resource_defs[logical_id].get("Condition")
        return True if cond is None else self.condition(cond, logical_id)

    # ----------------------------------------------------------------- evaluation
    def evaluate(self, value: Any, where: str) -> Any:
        """Resolve every intrinsic inside ``value``; ``AWS::NoValue`` entries are removed."""
        if isinstance(value, dict):
            if is_intrinsic(value):
                ((func, args),) = value.items()
                return self._call(func, args, where)
            out: dict[str, Any] = {}
            for key, item in value.items():
                resolved = self.evaluate(item, where)
                if resolved is not NO_VALUE:
                    out[key] = resolved
            return out
        if isinstance(value, list):
            items = [self.evaluate(item, where) for item in value]
            return [item for item in items if item is not NO_VALUE]
        return value

    def _call(self, func: str, args: Any, where: str) -> Any:
        handler = self._FUNCS.get(func)
        if handler is None:
            if func in _CONDITION_FUNCS:
                raise DeployError(where, f"Template error: {func} may only be used in Conditions")
            raise DeployError(
                where, f"Template error: unsupported intrinsic function {func} in the local cloud"
            )
        return handler(self, args, where)

    def ref(self, name: Any, where: str) -> Any:
        if not isinstance(name, str):
            raise DeployError(where, f"Template error: Ref takes a name, got {name!r}")
        if name in self.pseudo:
            return NO_VALUE if name == "AWS::NoValue" else self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resource_defs:
            self._check_active(name, where)
            created = self.created.get(name)
            if created is None:
                raise DeployError(where, f"Template error: {name} is referenced before it was created")
            return created.physical_id
        raise DeployError(
            where, f"Template format error: Unresolved resource dependencies [{name}] in the Resources block"
        )

    def get_att(self, logical_id: Any, attribute: Any, where: str) -> Any:
        attribute = self.evaluate(attribute, where)
        if not isinstance(logical_id, str) or not isinstance(attribute, str):
            raise DeployError(where, "Template error: Fn::GetAtt takes [logicalId, attributeName]")
        if logical_id not in self.resource_defs:
            raise DeployError(
                where,
                f"Template format error: Unresolved resource dependencies [{logical_id}] in the Resources block",
            )
        self._check_active(logical_id, where)
        created = self.created.get(logical_id)
        if created is None:
            raise DeployError(where, f"Template error: {logical_id} is referenced before it was created")
        if attribute not in created.attributes:
            rtype = self.resource_defs[logical_id].get("Type")
            raise DeployError(
                where,
                f"Template error: resource {logical_id} ({rtype}) does not support attribute type "
                f"{attribute} in Fn::GetAtt",
            )
        return created.attributes[attribute]

    def _check_active(self, logical_id: str, where: str) -> None:
        if not self.resource_active(logical_id):
            raise DeployError(
                where,
                f"Template error: {logical_id} is not created (its Condition is false) but is referenced",
            )

    # ----------------------------------------------------------------- functions
    def _fn_ref(self, args: Any, where: str) -> Any:
        return self.ref(args, where)

    def _fn_get_att(self, args: Any, where: str) -> Any:
        if isinstance(args, str):
            args = args.split(".", 1)
        if not isinstance(args, list) or len(args) != 2:
            raise DeployError(where, "Template error: Fn::GetAtt takes [logicalId, attributeName]")
        return self.get_att(args[0], args[1], where)

    def _fn_sub(self, args: Any, where: str) -> str:
        if isinstance(args, str):
            template, variables = args, {}
        elif isinstance(args, list) and len(args) == 2 and isinstance(args[1], dict):
            template = self.evaluate(args[0], where)
            variables = {k: self.evaluate(v, where) for k, v in args[1].items()}
        else:
            raise DeployError(where, "Template error: Fn::Sub takes a string or [string, {variables}]")
        if not isinstance(template, str):
            raise DeployError(where, "Template error: Fn::Sub's template must be a string")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} writes ${Literal}
            name = name.strip()
            if name in variables:
                value = variables[name]
            elif "." in name and name.split(".", 1)[0] in self.resource_defs:
                lid, attr = name.split(".", 1)
                value = self.get_att(lid, attr, where)
            else:
                value = self.ref(name, where)
            return _scalar_text(value, where, f"Fn::Sub variable ${{{name}}}")

        return _SUB_VAR.sub(replace, template)

    def _fn_join(self, args: Any, where: str) -> str:
        if not isinstance(args, list) or len(args) != 2:
            raise DeployError(where, "Template error: Fn::Join takes [delimiter, [values]]")
        delimiter = self.evaluate(args[0], where)
        values = self.evaluate(args[1], where)
        if not isinstance(delimiter, str) or not isinstance(values, list):
            raise DeployError(where, "Template error: Fn::Join takes [delimiter, [values]]")
        return delimiter.join(_scalar_text(v, where, "each Fn::Join value") for v in values)

    def _fn_select(self, args: Any, where: str) -> Any:
        if not isinstance(args, list) or len(args) != 2:
            raise DeployError(where, "Template error: Fn::Select takes [index, [values]]")
        index = self.evaluate(args[0], where)
        values = self.evaluate(args[1], where)
        try:
            position = int(index)
        except (TypeError, ValueError):
            raise DeployError(
                where, f"Template error: Fn::Select index {index!r} is not an integer"
            ) from None
        if not isinstance(values, list):
            raise DeployError(where, "Template error: Fn::Select needs a list")
        if not 0 <= position < len(values):
            raise DeployError(
                where, f"Template error: Fn::Select cannot select index {position} of {values!r}"
            )
        return values[position]

    def _fn_split(self, args: Any, where: str) -> list[str]:
        if not isinstance(args, list) or len(args) != 2:
            raise DeployError(where, "Template error: Fn::Split takes [delimiter, string]")
        delimiter = self.evaluate(args[0], where)
        source = self.evaluate(args[1], where)
        if not isinstance(delimiter, str) or not isinstance(source, str):
            raise DeployError(where, "Template error: Fn::Split takes [delimiter, string]")
        return source.split(delimiter)

    def _fn_if(self, args: Any, where: str) -> Any:
        if not isinstance(args, list) or len(args) != 3:
            raise DeployError(
                where, "Template error: Fn::If takes [condition, value_if_true, value_if_false]"
            )
        chosen = args[1] if self.condition(args[0], where) else args[2]
        return self.evaluate(chosen, where)

    def _fn_find_in_map(self, args: Any, where: str) -> Any:
        if not isinstance(args, list) or len(args) not in (3, 4):
            raise DeployError(
                where, "Template error: Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]"
            )
        names = [self.evaluate(a, where) for a in args[:3]]
        default = None
        if len(args) == 4:
            option = self.evaluate(args[3], where)
            if not isinstance(option, dict) or "DefaultValue" not in option:
                raise DeployError(
                    where, "Template error: Fn::FindInMap's 4th element must be {DefaultValue: ...}"
                )
            default = option["DefaultValue"]
        try:
            return self.mappings[names[0]][_scalar_text(names[1], where, "FindInMap key")][
                _scalar_text(names[2], where, "FindInMap key")
            ]
        except (KeyError, TypeError):
            if default is not None:
                return default
            raise DeployError(
                where, f"Template error: Fn::FindInMap cannot find {names!r} in Mappings"
            ) from None

    def _fn_get_azs(self, args: Any, where: str) -> list[str]:
        region = self.evaluate(args, where) or self.pseudo["AWS::Region"]
        return self.get_azs(_scalar_text(region, where, "Fn::GetAZs region"))

    def _fn_base64(self, args: Any, where: str) -> str:
        text = _scalar_text(self.evaluate(args, where), where, "Fn::Base64 value")
        return base64.b64encode(text.encode()).decode()

    def _fn_cidr(self, args: Any, where: str) -> list[str]:
        if not isinstance(args, list) or len(args) != 3:
            raise DeployError(where, "Template error: Fn::Cidr takes [ipBlock, count, cidrBits]")
        block, count, bits = (self.evaluate(a, where) for a in args)
        try:
            network = ipaddress.ip_network(str(block), strict=False)
            new_prefix = network.max_prefixlen - int(bits)
            subnets = network.subnets(new_prefix=new_prefix)
            return [str(next(subnets)) for _ in range(int(count))]
        except (ValueError, StopIteration) as exc:
            raise DeployError(where, f"Template error: Fn::Cidr {args!r}: {exc}") from None

    def _fn_length(self, args: Any, where: str) -> int:
        values = self.evaluate(args, where)
        if not isinstance(values, list):
            raise DeployError(where, "Template error: Fn::Length needs a list")
        return len(values)

    def _fn_to_json_string(self, args: Any, where: str) -> str:
        return json.dumps(self.evaluate(args, where), separators=(",", ":"))

    _FUNCS: dict[str, Callable[[Evaluator, Any, str], Any]] = {
        "Ref": _fn_ref,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _fn_sub,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::If": _fn_if,
        "Fn::FindInMap": _fn_find_in_map,
        "Fn::GetAZs": _fn_get_azs,
        "Fn::Base64": _fn_base64,
        "Fn::Cidr": _fn_cidr,
        "Fn::Length": _fn_length,
        "Fn::ToJsonString": _fn_to_json_string,
    }

    # ----------------------------------------------------------------- validation
    def validate(self, value: Any, where: str, *, taken: bool = True) -> None:
        """Check names and functions before anything is created, as CloudFormation
        validates a template before it starts: unknown Ref/GetAtt/Sub targets, references
        to resources whose Condition is false, unknown conditions, unsupported functions.
        ``taken`` is False inside the untaken branch of an ``Fn::If``, where a reference to
        a conditional resource is allowed."""
        if isinstance(value, list):
            for item in value:
                self.validate(item, where, taken=taken)
            return
        if not isinstance(value, dict):
            return
        if not is_intrinsic(value):
            for item in value.values():
                self.validate(item, where, taken=taken)
            return
        ((func, args),) = value.items()
        if func not in self._FUNCS:
            self._call(func, args, where)  # raises the right error
        if func == "Ref":
            if isinstance(args, str) and args not in self.pseudo and args not in self.parameters:
                self._check_resource(args, where, taken)
            return
        if func == "Fn::GetAtt":
            target = args.split(".", 1)[0] if isinstance(args, str) else (args or [None])[0]
            self._check_resource(target, where, taken)
            if isinstance(args, list) and len(args) > 1:
                self.validate(args[1], where, taken=taken)
            return
        if func == "Fn::If" and isinstance(args, list) and len(args) == 3:
            chosen = self.condition(args[0], where)
            self.validate(args[1], where, taken=taken and chosen)
            self.validate(args[2], where, taken=taken and not chosen)
            return
        if func == "Fn::Sub":
            template, variables = (args, {}) if isinstance(args, str) else (args[0], args[1])
            self.validate(variables, where, taken=taken)
            if not isinstance(template, str):
                self.validate(template, where, taken=taken)
                return
            for name in _SUB_VAR.findall(template):
                name = name.strip()
                if (
                    name.startswith("!")
                    or name in variables
                    or name in self.pseudo
                    or name in self.parameters
                ):
                    continue
                self._check_resource(name.split(".", 1)[0], where, taken)
            return
        self.validate(args, where, taken=taken)

    def _check_resource(self, name: Any, where: str, taken: bool) -> None:
        if not isinstance(name, str) or name not in self.resource_defs:
            raise DeployError(
                where,
                f"Template format error: Unresolved resource dependencies [{name}] in the Resources block",
            )
        if taken:
            self._check_active(name, where)

    # ----------------------------------------------------------------- dependencies
    def references(self, value: Any, where: str) -> set[str]:
        """Logical ids of resources ``value`` refers to (Ref, GetAtt, Sub), following only
        the taken branch of each ``Fn::If``."""
        found: set[str] = set()
        self._collect(value, where, found)
        return found

    def _collect(self, value: Any, where: str, found: set[str]) -> None:
        if isinstance(value, list):
            for item in value:
                self._collect(item, where, found)
            return
        if not isinstance(value, dict):
            return
        if is_intrinsic(value):
            ((func, args),) = value.items()
            if func == "Ref":
                if isinstance(args, str) and args in self.resource_defs:
                    found.add(args)
                return
            if func == "Fn::GetAtt":
                target = args.split(".", 1)[0] if isinstance(args, str) else (args or [None])[0]
                if isinstance(target, str) and target in self.resource_defs:
                    found.add(target)
                if isinstance(args, list) and len(args) > 1:
                    self._collect(args[1], where, found)
                return
            if func == "Fn::If" and isinstance(args, list) and len(args) == 3:
                self._collect(args[1] if self.condition(args[0], where) else args[2], where, found)
                return
            if func == "Fn::Sub":
                template, variables = (args, {}) if isinstance(args, str) else (args[0], args[1])
                self._collect(variables, where, found)
                if isinstance(template, str):
                    for name in _SUB_VAR.findall(template):
                        base = name.strip().split(".", 1)[0]
                        if not name.startswith("!") and name not in variables and base in self.resource_defs:
                            found.add(base)
                else:
                    self._collect(template, where, found)
                return
        for item in value.values():
            self._collect(item, where, found)
