"""Test helpers shipped with the provider: an S3 server (moto) as a pytest fixture, and a process helper.

The job-API emulator is a separate distribution (``jobstatus-emulator``, in this repository's
``emulator/`` folder)."""
