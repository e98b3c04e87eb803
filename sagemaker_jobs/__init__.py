"""SageMaker job entry points (preprocess, train, evaluate) and the pipeline definition.

Each job is a thin ``main()`` over a pure core; importing this package pulls in nothing heavy.
"""
