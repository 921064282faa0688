"""A citizens' channel talking to the center through real GeoReport v2
clients nobody here wrote: the `georeport` package (PyPI) for every read,
`requests` for the POST (georeport has none). Prints JSON for the Rust test.

    client.py ROOT services            both formats, and one definition
    client.py ROOT post KEY CODE LAT LONG DESC [FORMAT]
    client.py ROOT status ID           through georeport, JSON and XML
    client.py ROOT token TOKEN         tokens/{token}.json
"""
import json
import sys

import requests
from georeport import GeoReport

root, what, args = sys.argv[1], sys.argv[2], sys.argv[3:]
out = {}
if what == "services":
    as_json = GeoReport(root, output_format="json").get_service_list()
    as_xml = GeoReport(root, output_format="xml").get_service_list()
    code = as_json[0]["service_code"]
    out = {
        "json": as_json,
        "xml": as_xml,
        "definition_json": GeoReport(root).get_service_definition(code),
        "definition_xml": GeoReport(root, output_format="xml").get_service_definition(code),
    }
elif what == "post":
    key, code, lat, long, desc = args[:5]
    fmt = args[5] if len(args) > 5 else "json"
    r = requests.post(
        f"{root}/requests.{fmt}",
        data={
            "api_key": key,
            "service_code": code,
            "lat": lat,
            "long": long,
            "description": desc,
            "media_url": "https://example.org/photo.jpg",
            "address_string": "滨江区 江南大道 1 号",
            "email": "citizen@example.org",
        },
        timeout=30,
    )
    out = {"status": r.status_code, "retry_after": r.headers.get("Retry-After"), "body": r.text}
elif what == "status":
    (rid,) = args
    out = {
        "json": GeoReport(root).get_service_request(rid),
        "xml": GeoReport(root, output_format="xml").get_service_request(rid),
        "list": GeoReport(root).get_service_requests(service_request_id=rid),
    }
elif what == "token":
    (token,) = args
    r = requests.get(f"{root}/tokens/{token}.json", timeout=30)
    out = {"status": r.status_code, "body": r.json()}
print(json.dumps(out, ensure_ascii=False))
