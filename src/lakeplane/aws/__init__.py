"""AWS targets: the requests that run a pipeline or model on EMR, EMR Serverless, Glue or Step
Functions (and an Athena workgroup for its readers), rendered from the project, validated against
botocore's service models, and sent through boto3. :mod:`lakeplane.aws.entry` is what those jobs
run there: lakeplane's own step, against the lake on S3.
"""
