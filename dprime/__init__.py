"""The `dprime` command line: one entry point over facecore, training and the service.

Subcommands import their package lazily, so `dprime models ...` or `dprime keys ...` never load torch.
"""
