"""S3 on the local cloud: moto 5.2.5 (targeted version) with Sluice's corrections (EventBridge events, multipart join, shared bodies)."""
