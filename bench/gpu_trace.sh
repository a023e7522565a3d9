#!/usr/bin/env bash
# Which processes hold the card during a GPU run, second by second. Source it before the run, call gpu_trace_stop
# after; bench/gpu_trace.py then joins the two files into per-job GPU shares. Writes into folder $1:
#   pmon.txt  `nvidia-smi pmon -s u -o T`: each compute process's SM share (%) per second, by pid;
#   ps.txt    a `ps` snapshot per second of the seed processes, with their parents (a rule job logs its own pid).
gpu_trace_start() {
  local folder=$1
  nvidia-smi pmon -s u -o T -d 1 > "$folder/pmon.txt" 2>&1 &
  GPU_TRACE_PIDS=$!
  ( while true; do echo "@ $(date +%H:%M:%S)"; ps -eo pid,ppid,args --no-headers | grep seed_processes | grep -v grep; sleep 1; done ) > "$folder/ps.txt" 2>&1 &
  GPU_TRACE_PIDS="$GPU_TRACE_PIDS $!"
}
gpu_trace_stop() {
  kill $GPU_TRACE_PIDS 2>/dev/null
}
