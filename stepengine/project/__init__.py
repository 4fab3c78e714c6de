"""Projects: the loop from a directory to a deployment a worker runs, with stepengine alone.

``recipes`` (templates for ``init``) → ``init`` (prepare a directory) → ``flows`` (find ``@flow``
functions by reading the source) → ``layout`` (prefect.yaml, or the older prefect.yaml +
deployment.yaml) → ``deploy`` (run build/push, render the deployment spec) → ``prefect_api``
(register it on a Prefect server) → ``records`` (what deploy leaves in ``.prefect/deployments.json``) ;
``source`` (``from_source(...).deploy(...)``, the Python form of deploy) ; ``script`` (a flow file
that deploys itself, run with the stand-in ``prefect`` of ``_stand_in/``) ; ``execute`` (what a
process worker does: pull, then run the flow, with that stand-in when Prefect is not installed).
"""
