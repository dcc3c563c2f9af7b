#!/usr/bin/env python3
"""Reference renderer for chat templates: jinja2 configured as Hugging Face's
transformers configures it in apply_chat_template (chat_template_utils.py):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loop
controls extension and the {% generation %} tag, tojson as json.dumps with
ensure_ascii=False, and the globals raise_exception and strftime_now. strftime_now
formats a fixed time given in the request so that both renderers agree.

Usage: render_chat_template.py REQUEST.json RESPONSE.json

REQUEST: {"now": <unix seconds>, "jobs": [{"template": str, "bos_token": str,
          "eos_token": str, "cases": [{"messages": [...], "add_generation_prompt": bool,
          "extra_context": {...}}]}]}
RESPONSE: [[{"ok": true, "text": str} | {"ok": false, "error": str}, ...] per job]
"""

import datetime
import json
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class AssistantTracker(Extension):
    """The {% generation %} block of transformers: renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_generation_support")
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _generation_support(self, caller):
        return caller()


def make_environment(now):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True,
        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def error_text(e):
    return f"{type(e).__name__}: {e}"


def run_job(env, job):
    try:
        template = env.from_string(job["template"])
    except Exception as e:  # a template jinja2 cannot compile fails every case
        return [{"ok": False, "error": error_text(e)} for _ in job["cases"]]
    results = []
    for case in job["cases"]:
        variables = {
            "messages": case["messages"],
            "add_generation_prompt": case["add_generation_prompt"],
            "bos_token": job["bos_token"],
            "eos_token": job["eos_token"],
            "tools": None,
            "documents": None,
        }
        variables.update(case.get("extra_context", {}))
        try:
            results.append({"ok": True, "text": template.render(**variables)})
        except Exception as e:
            results.append({"ok": False, "error": error_text(e)})
    return results


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    env = make_environment(request["now"])
    response = [run_job(env, job) for job in request["jobs"]]
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(response, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
