"""The "trading loop" the canary.sh stand-in starts: sleeps until SIGINT
(the rollback plan's pause), then exits. SIGINT is ignored in a process
that bash starts in the background, so the handler is set explicitly."""
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
try:
    time.sleep(120)
except KeyboardInterrupt:
    sys.stderr.write("paused (SIGINT)\n")
