"""The command line: run.py's command and the `har-clip` console script (`cli.main`), and the commands beside the
pipelines (deploy, roll back, benchmark, reproduce, publish, infer, multi-node), with the run-config checks and the
run summary they print. Imports nothing on its own."""
