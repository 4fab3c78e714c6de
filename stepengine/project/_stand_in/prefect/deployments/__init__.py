"""``prefect.deployments`` of the stand-in: the older ``Deployment.build_from_flow(...).apply()``."""

from __future__ import annotations

import typing as t


class Deployment:
    """``Deployment.build_from_flow(flow, name, ...)`` then ``.apply()`` (Prefect 2), through stepengine."""

    def __init__(self, flow: t.Any, name: str, options: dict[str, t.Any]) -> None:
        self.flow, self.name, self.options = flow, name, options

    @classmethod
    def build_from_flow(
        cls,
        flow: t.Any,
        name: str,
        output: str | None = None,
        skip_upload: bool = False,
        apply: bool = False,
        load_existing: bool = True,
        **options: t.Any,
    ) -> Deployment:
        deployment = cls(flow, name, options)
        if apply:
            deployment.apply()
        return deployment

    def apply(self, upload: bool = False, work_queue_concurrency: int | None = None) -> t.Any:
        from stepengine.project.script import build_from_script

        return build_from_script(self.flow, self.name, self.options)


def run_deployment(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
    raise RuntimeError(
        "run_deployment: stepengine's stand-in prefect module has no server to start a run on; "
        "use `stepengine execute -d NAME`"
    )


__all__ = ["Deployment", "run_deployment"]
