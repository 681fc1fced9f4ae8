"""One hook per service, all on `JobServiceHook`."""
