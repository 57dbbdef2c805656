"""EventBridge on the local cloud: moto 5.2.5 (targeted version) stores rules; Sluice delivers events to targets."""
