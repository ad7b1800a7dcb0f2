"""Stored templates on every surface: v2's Create/Get/List/Update/DeleteEmailTemplate and v1's
template actions with boto3 against `ses-harness serve`, sending with them, `serve --templates`,
and the list the page shows."""

from __future__ import annotations

import json

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

WELCOME = {"Subject": "Welcome, {{name}}", "Text": "Hello {{name}}", "Html": "<p>Hi {{name}}</p>"}
TO = {"ToAddresses": ["ann@example.com"]}


def sdk(url: str, service: str):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}),
    )


def error_of(call, **kwargs) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    response = refused.value.response
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    return status, response["Error"]["Code"], response["Error"]["Message"]


def test_boto3_creates_a_template_against_serve_and_sends_with_it(start):
    server = start()
    sesv2 = sdk(server.ready["api_url"], "sesv2")
    sesv2.create_email_template(TemplateName="welcome", TemplateContent=WELCOME)
    got = sesv2.get_email_template(TemplateName="welcome")
    assert (got["TemplateName"], got["TemplateContent"]) == ("welcome", WELCOME)
    sent = sesv2.send_email(
        FromEmailAddress="app@example.com",
        Destination=TO,
        Content={"Template": {"TemplateName": "welcome", "TemplateData": '{"name": "Ann"}'}},
    )
    _, listed = server.api("GET", "/api/messages")
    assert [m["subject"] for m in listed] == ["Welcome, Ann"]
    assert sent["MessageId"] == listed[0]["ses_id"]
    _, shown = server.api("GET", f"/api/messages/{listed[0]['sequence']}")
    assert shown["body"]["text"].strip() == "Hello Ann"

    sesv2.update_email_template(TemplateName="welcome", TemplateContent={"Subject": "New"})
    assert sesv2.get_email_template(TemplateName="welcome")["TemplateContent"] == {"Subject": "New"}
    _, page = server.api("GET", "/api/templates")
    assert [(t["name"], t["Subject"]) for t in page] == [("welcome", "New")]
    sesv2.delete_email_template(TemplateName="welcome")
    assert error_of(sesv2.get_email_template, TemplateName="welcome") == (
        404,
        "NotFoundException",
        "Template welcome does not exist.",
    )
    assert server.api("GET", "/api/templates") == (200, [])


def test_v2_template_errors_are_the_models(start):
    server = start()
    sesv2 = sdk(server.ready["api_url"], "sesv2")
    sesv2.create_email_template(TemplateName="t", TemplateContent=WELCOME)
    assert error_of(sesv2.create_email_template, TemplateName="t", TemplateContent=WELCOME) == (
        400,
        "AlreadyExistsException",
        "Template t already exists.",
    )
    for call in (sesv2.update_email_template, sesv2.delete_email_template):
        kwargs = {"TemplateName": "none"}
        if call == sesv2.update_email_template:
            kwargs["TemplateContent"] = WELCOME
        assert error_of(call, **kwargs)[:2] == (404, "NotFoundException")
    assert error_of(sesv2.list_email_templates, PageSize=101)[:2] == (400, "BadRequestException")


def test_listing_templates_pages_with_next_token(start):
    server = start()
    sesv2 = sdk(server.ready["api_url"], "sesv2")
    for n in range(12):
        sesv2.create_email_template(TemplateName=f"t{n:02}", TemplateContent={"Subject": "s"})
    first = sesv2.list_email_templates()  # the model's default page: 10
    second = sesv2.list_email_templates(NextToken=first["NextToken"])
    names = [t["TemplateName"] for t in first["TemplatesMetadata"] + second["TemplatesMetadata"]]
    assert names == [f"t{n:02}" for n in range(12)]
    assert len(first["TemplatesMetadata"]) == 10 and "NextToken" not in second
    v1 = sdk(server.ready["api_url"], "ses").list_templates(MaxItems=5)
    assert [t["Name"] for t in v1["TemplatesMetadata"]] == [f"t{n:02}" for n in range(5)]
    assert v1["NextToken"]


def test_v1_template_actions_and_send_templated_email(start):
    server = start()
    ses = sdk(server.ready["api_url"], "ses")
    ses.create_template(Template={"TemplateName": "bill", "SubjectPart": "Bill {{n}}"})
    ses.update_template(
        Template={"TemplateName": "bill", "SubjectPart": "Invoice {{n}}", "TextPart": "Due {{n}}"}
    )
    assert ses.get_template(TemplateName="bill")["Template"] == {
        "TemplateName": "bill",
        "SubjectPart": "Invoice {{n}}",
        "TextPart": "Due {{n}}",
    }
    sent = ses.send_templated_email(
        Source="app@example.com", Destination=TO, Template="bill", TemplateData='{"n": 7}'
    )
    _, listed = server.api("GET", "/api/messages")
    assert [(m["subject"], m["ses_id"]) for m in listed] == [("Invoice 7", sent["MessageId"])]
    assert error_of(ses.get_template, TemplateName="none") == (
        400,
        "TemplateDoesNotExist",
        "Template none does not exist.",
    )
    assert error_of(ses.create_template, Template={"TemplateName": "bill"})[:2] == (
        400,
        "AlreadyExists",
    )
    missing = dict(Source="app@example.com", Destination=TO, Template="none", TemplateData="{}")
    assert error_of(ses.send_templated_email, **missing)[:2] == (400, "TemplateDoesNotExist")
    ses.delete_template(TemplateName="bill")
    ses.delete_template(TemplateName="bill")  # v1's model names no error for an unknown name
    assert ses.list_templates()["TemplatesMetadata"] == []


def test_serve_loads_templates_from_the_files_the_aws_cli_takes(start, tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    v2_file = {"TemplateName": "welcome", "TemplateContent": WELCOME}
    (folder / "welcome.json").write_text(json.dumps(v2_file))
    v1_file = [{"Template": {"TemplateName": "bill", "SubjectPart": "Bill {{n}}"}}]
    (folder / "more.json").write_text(json.dumps(v1_file))
    server = start("--templates", str(folder))
    assert any(line.startswith("  templates 2 stored: bill, welcome") for line in server.lines)
    sesv2 = sdk(server.ready["api_url"], "sesv2")
    names = [t["TemplateName"] for t in sesv2.list_email_templates()["TemplatesMetadata"]]
    assert names == ["bill", "welcome"]
    sesv2.send_email(
        FromEmailAddress="app@example.com",
        Destination=TO,
        Content={"Template": {"TemplateName": "bill", "TemplateData": '{"n": 3}'}},
    )
    assert server.api("GET", "/api/messages")[1][0]["subject"] == "Bill 3"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{", "not valid JSON"),
        ('{"TemplateName": "x"}', "are not a template"),
        ('{"TemplateName": "x", "TemplateContent": {"Subject": 3}}', "TemplateContent.Subject"),
        ('[{"Template": {"SubjectPart": "s"}}]', "[0].Template.TemplateName"),
        ('{"TemplateName": "x", "TemplateContent": {"Body": "b"}}', "is not a template part"),
    ],
)
def test_a_bad_template_file_is_one_line_naming_the_file_and_key(tmp_path, content, error):
    from tests.test_serve_cli import run_cli

    bad = tmp_path / "bad.json"
    bad.write_text(content)
    done = run_cli("--templates", str(bad))
    code, err = done.returncode, done.stderr
    assert code == 2
    assert str(bad) in err and error in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
