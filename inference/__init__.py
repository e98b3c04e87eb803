"""Model serving (the SageMaker inference contract); built out by the serving issue."""
