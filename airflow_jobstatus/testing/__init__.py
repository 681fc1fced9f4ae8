"""Test helpers shipped with the provider: the job-API emulator and an S3 server, as pytest fixtures."""
