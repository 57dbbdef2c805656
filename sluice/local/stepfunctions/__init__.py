"""Step Functions on the local cloud: moto 5.2.5's ASL interpreter (targeted version) with Sluice's corrections."""
