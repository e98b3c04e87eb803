"""``mlops ui``: a local web console over the functions the CLI uses (projects, executions with
their step graph and logs, model versions with approve/reject, endpoints with a try-the-model
form, experiments). Starlette with Jinja2 templates; no asset from the internet, no build step."""
