"""The SSH brute-force demo: sshd parsing (sshd), loading (load), a log generator (generate) and
the `make demo` orchestration (run). CLI: watcher/cli_demo.py."""
