from .cli import main

main(prog_name="iam-reasoner")
