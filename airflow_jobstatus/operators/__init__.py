"""Operators: a submit operator per service on one base (`operators.base.JobSubmitOperator`), and the outputs transfer."""
