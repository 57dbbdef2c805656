"""SNS on the local cloud: moto 5.2.5 (targeted version) plus the notifications outbox."""
