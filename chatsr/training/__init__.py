"""Training: the loop, its data streams, the distributed (FSDP) set-up and the debugger."""
