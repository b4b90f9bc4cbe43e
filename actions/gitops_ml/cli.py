"""`gitops-ml`: the one CLI that the actions, the Makefile and people all call.

Each verb lives in `gitops_ml.commands.<module>` as a click command named `cli`, imported only
when it runs, so `gitops-ml --help` is instant. Every option names its environment variable
explicitly (`GITOPS_ML_<OPTION>`), which is how each action's inputs arrive (through `env:`, never
inside `run:`).
"""

from __future__ import annotations

import importlib
import sys

import click

from gitops_ml.errors import GitopsMLError

COMMANDS = {
    "contract": ("gitops_ml.commands.contract", "print the contract's JSON Schema, or infer one from a CSV"),
    "data-check": ("gitops_ml.commands.data_check", "check a dataset against the contract (and for drift)"),
    "train": ("gitops_ml.commands.train", "run the pipeline, log and register the model"),
    "compare": ("gitops_ml.commands.compare", "compare the challenger with the champion under the policy"),
    "verify": ("gitops_ml.commands.verify", "at merge: verify approved, bound candidates and copy them to production"),
    "promote": ("gitops_ml.commands.promote", "move the champion alias to an approved version"),
    "rollback": ("gitops_ml.commands.rollback", "move the champion alias back to the previous champion"),
    "lineage": ("gitops_ml.commands.lineage", "print the audit trail of a model version"),
    "bake": ("gitops_ml.commands.bake", "download a registered model into a folder for the image"),
    "build-image": ("gitops_ml.commands.build_image", "build, label and push a version's serving image (by digest)"),
    "deploy": ("gitops_ml.commands.deploy", "deploy a version's image to an environment, smoke-tested"),
    "drift": ("gitops_ml.commands.drift", "measure drift of current data against the champion's reference"),
    "retrain-pr": ("gitops_ml.commands.retrain_pr", "open or update the retraining pull request when drift says so"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[name][0])
        return module.cli

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"show_default": True})
@click.version_option(package_name="gitops-ml")
def cli() -> None:
    """GitOps for ML models: every change to production is a pull request."""


def main(argv: list[str] | None = None) -> int:
    try:
        # Without standalone mode, click returns ctx.exit(n)'s code instead of exiting.
        code = cli.main(args=argv, prog_name="gitops-ml", standalone_mode=False)
    except GitopsMLError as error:
        from gitops_ml.io import gha

        gha.error(str(error))
        return 2
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        print("aborted", file=sys.stderr)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
