"""Run Airbyte's Salesloft source manifest on the current airbyte-cdk against a local base URL.

Executed by bench/peers.py with the Python of a separate virtualenv that has airbyte-cdk:

    python airbyte_runner.py PACKAGE_DIR BASE_URL API_KEY STREAM [CONCURRENCY]

PACKAGE_DIR holds the unpacked ``source_salesloft`` package (from PyPI's wheel); only the manifest's
``url_base`` is rewritten to point at the sandbox, and CONCURRENCY (if given) becomes the manifest's
``concurrency_level`` (the CDK's worker threads: streams and partitions synced at once).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def main() -> None:
    package_dir, base_url, api_key, stream = sys.argv[1:5]
    concurrency = int(sys.argv[5]) if len(sys.argv) > 5 else None
    sys.path.insert(0, package_dir)
    import yaml
    from airbyte_cdk.entrypoint import launch
    from airbyte_cdk.models import ConfiguredAirbyteCatalogSerializer
    from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource

    manifest = yaml.safe_load((Path(package_dir) / "source_salesloft" / "manifest.yaml").read_text())
    manifest["definitions"]["base_requester"]["url_base"] = base_url.rstrip("/") + "/v2"
    _migrate(manifest)
    if concurrency:
        manifest["concurrency_level"] = {
            "type": "ConcurrencyLevel",
            "default_concurrency": concurrency,
            "max_concurrency": concurrency,
        }
    config = {
        "credentials": {"auth_type": "api_key", "api_key": api_key},
        "start_date": "2000-01-01T00:00:00Z",
    }
    import logging

    discovered = ConcurrentDeclarativeSource(config=config, source_config=manifest).discover(
        logging.getLogger("bench"), config
    )
    entry = next(s for s in discovered.streams if s.name == stream)
    stream_dict = {
        "name": entry.name,
        "json_schema": entry.json_schema,
        "supported_sync_modes": [m.value for m in entry.supported_sync_modes],
    }
    configured = {
        "streams": [
            {"stream": stream_dict, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
        ]
    }
    source = ConcurrentDeclarativeSource(
        catalog=ConfiguredAirbyteCatalogSerializer.load(configured),
        config=config,
        state=None,
        source_config=manifest,
    )
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "config.json"
        catalog_path = Path(tmp) / "catalog.json"
        config_path.write_text(json.dumps(config))
        catalog_path.write_text(json.dumps(configured))
        launch(source, ["read", "--config", str(config_path), "--catalog", str(catalog_path)])


def _migrate(node) -> None:
    """The one change the current CDK demands (its migration guide): `stream_state` in request
    parameters becomes `stream_interval`, whose start is the same cursor value."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and "stream_state" in value and key.endswith("[gt]"):
                node[key] = "{{ stream_interval.start_time }}"
            else:
                _migrate(value)
    elif isinstance(node, list):
        for item in node:
            _migrate(item)


if __name__ == "__main__":
    main()
