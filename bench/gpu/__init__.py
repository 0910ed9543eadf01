"""The GPU check: wheels prepared here, one command on a CUDA machine (see README.md)."""
