"""``prefect.deployments`` of the stand-in: the older ``Deployment.build_from_flow(...).apply()``."""


class Deployment:
    """``Deployment.build_from_flow(flow, name, ...)`` then ``.apply()`` (Prefect 2), through stepengine."""

    def __init__(self, flow, name, options):
        self.flow, self.name, self.options = flow, name, options

    @classmethod
    def build_from_flow(
        cls, flow, name, output=None, skip_upload=False, apply=False, load_existing=True, **options
    ):
        deployment = cls(flow, name, options)
        if apply:
            deployment.apply()
        return deployment

    def apply(self, upload=False, work_queue_concurrency=None):
        from stepengine.project.script import build_from_script

        return build_from_script(self.flow, self.name, self.options)


def run_deployment(*args, **kwargs):
    raise RuntimeError(
        "run_deployment: stepengine's stand-in prefect module has no server to start a run on; "
        "use `stepengine execute -d NAME`"
    )


__all__ = ["Deployment", "run_deployment"]
