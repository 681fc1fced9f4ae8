"""Job sensors, one per service, on one base (`airflow_jobstatus.sensors.base.JobSensor`)."""
