"""The floor: plain httpx + orjson, paging a stream and printing Singer RECORD lines, nothing else.

python bench/floor.py BASE_URL API_KEY [PATH]
"""

from __future__ import annotations

import sys

import httpx
import orjson


def main() -> None:
    base, key = sys.argv[1], sys.argv[2]
    path = sys.argv[3] if len(sys.argv) > 3 else "/v2/people.json"
    out = sys.stdout.buffer
    params = {"per_page": 100, "sort_by": "updated_at", "sort_direction": "ASC", "page": 1}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        while True:
            body = orjson.loads(client.get(path, params=params).content)
            records = body["data"]
            for record in records:
                out.write(
                    orjson.dumps(
                        {"type": "RECORD", "stream": "people", "record": record},
                        option=orjson.OPT_APPEND_NEWLINE,
                    )
                )
            nxt = body["metadata"]["paging"]["next_page"]
            if not nxt:
                break
            params["page"] = nxt
    out.flush()


if __name__ == "__main__":
    main()
