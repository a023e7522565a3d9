#!/usr/bin/env bash
# NVIDIA's Multi-Process Service for a GPU run: source it, call gpu_mps_start before the run and gpu_mps_stop after.
# Without MPS the card time-slices between processes, one process's kernels at a time; under MPS the kernels of
# several processes (the workflow's GPU jobs and seed processes) run on the card at once. The daemon is this user's,
# with its pipe and log folders under /tmp; the card's own settings (compute mode and the rest) are left alone.
gpu_mps_start() {
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps/pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps/log
  mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
  nvidia-cuda-mps-control -d && echo "MPS daemon started"
}
gpu_mps_stop() {
  echo quit | nvidia-cuda-mps-control && echo "MPS daemon stopped"
  echo "MPS clients that connected: $(grep -c 'NEW CLIENT' $CUDA_MPS_LOG_DIRECTORY/control.log 2>/dev/null)"
  tail -3 $CUDA_MPS_LOG_DIRECTORY/control.log 2>/dev/null
}
