"""Translate a SAM template into the CloudFormation that AWS deploys, offline.

Usage: .venv/bin/python infra/sam_translate.py [template.yaml]  (JSON on standard output)

This is SAM's own translator (the `samtranslator` package that the pinned `aws-sam-cli` in
infra/requirements.txt installs), the code that the `AWS::Serverless-2016-10-31` transform runs
in CloudFormation. Two things differ from a deploy, neither touching what is checked here:

* `CodeUri: .` is replaced by an S3 location, as `sam package` / `sam deploy` do before the
  transform runs (the translator accepts nothing else);
* the region is fixed (us-east-1, partition `aws`) and nothing is asked of AWS: managed policy
  names resolve from the map bundled with the translator, and no credentials are read.

Read by the `deployed_template` test (tests/deployed_template.rs), part of `make lint`.
"""

import json
import os
import sys

# Nothing here may reach AWS: no instance metadata look-up for a region or credentials.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

import boto3  # noqa: E402  (after the environment above)
from samtranslator.parser.parser import Parser  # noqa: E402
from samtranslator.translator.translator import Translator  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

REGION = "us-east-1"


def packaged(template: dict) -> dict:
    """What `sam package` hands the transform: each local CodeUri replaced by an S3 object."""
    for logical_id, resource in (template.get("Resources") or {}).items():
        properties = resource.get("Properties") or {}
        code_uri = properties.get("CodeUri")
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(code_uri, str):
            if not code_uri.startswith("s3://"):
                properties["CodeUri"] = f"s3://packaged-code/{logical_id}.zip"
    return template


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path, encoding="utf-8") as source:
        template = packaged(yaml_parse(source.read()))
    translator = Translator(
        None,  # managed policy names: the translator's bundled map
        Parser(),
        boto_session=boto3.session.Session(region_name=REGION),
    )
    translated = translator.translate(template, parameter_values={})
    json.dump(translated, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
