"""What the benchmark ran on: CPU layout (lscpu), GPU, versions, date."""
from __future__ import annotations

import datetime as _dt
import logging
import os
import platform
import shutil
import subprocess

logger = logging.getLogger(__name__)

LSCPU_FIELDS = ("Model name", "CPU(s)", "On-line CPU(s) list", "Thread(s) per core", "Core(s) per socket",
                "Socket(s)", "NUMA node(s)", "CPU max MHz", "L3")


def machine_info(device: str) -> dict:
    """Date, host, versions, usable cores, the GPU of `device` (when CUDA) and lscpu's summary and text."""
    import torch

    from gsenv.physics.cores import usable_cores
    from gsenv.physics.cpu_pool import usable_cpus

    info = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
            "python": platform.python_version(), "torch": torch.__version__, "usable_cores": usable_cores(),
            "affinity_cpus": len(usable_cpus()),
            "cpu_count": os.cpu_count(), "device": device}
    try:
        import gsplat

        info["gsplat"] = gsplat.__version__
    except ImportError:
        info["gsplat"] = None
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    lscpu = shutil.which("lscpu")
    if lscpu:
        text = subprocess.run([lscpu], capture_output=True, text=True, timeout=30).stdout
        fields = {}
        for line in text.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip()] = v.strip()
        info["lscpu"] = {k: fields[k] for k in LSCPU_FIELDS if k in fields}
        info["lscpu_text"] = text
    else:
        info["lscpu"] = None
        logger.warning("lscpu not found: the core layout is not recorded")
    return info
