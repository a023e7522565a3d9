# gpu.mps: the GPU jobs of a local run share the cards through an NVIDIA MPS daemon of the run's own
# (siteaug/runtime/mps.py), started before the first job and stopped after the last. A cluster executor's jobs run on
# other machines, one card each, so there it does nothing. Decided in onstart: while the Snakefile is read, Snakemake
# has not chosen its executor yet (workflow.local_exec is then True for a SLURM run too).
if config["gpu"]["mps"] and workflow.is_main_process:
    from snakemake.logging import logger

    from siteaug.runtime.mps import MpsDaemon

    MPS = MpsDaemon()  # started by onstart, so a dry run needs no driver

    onstart:
        if workflow.local_exec:
            config_checks.stop_on(MPS.start)
            logger.info(f"GPU jobs share the cards through NVIDIA MPS (gpu.mps); its folder: {MPS.folder}")
        else:
            logger.info("gpu.mps: ignored (the jobs run on other machines)")

    def stop_mps():
        stopped = MPS.stop()
        if stopped:
            logger.info(f"NVIDIA MPS stopped; {stopped.clients} client processes had connected")
            for line in stopped.problems[-5:]:  # why a job failed under MPS, when the daemon knows
                logger.warning(f"NVIDIA MPS log: {line}")

    onsuccess:
        stop_mps()

    onerror:
        stop_mps()
