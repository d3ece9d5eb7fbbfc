"""digest.feedback.reports: delivery status notifications, ARF complaints and provider JSON, parsed.

The samples follow what Postfix, Gmail, Exchange and the feedback loops actually send
(multipart/report with message/delivery-status or message/feedback-report, and the
returned headers as text/rfc822-headers or the whole message as message/rfc822).
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.feedback.reports import (
    RECIPIENTS_MAX_PER_REPORT,
    ComplaintReport,
    DeliveryReport,
    FeedbackEvent,
    classify,
    effective_status,
    events_from_message,
    events_from_sendgrid,
    events_from_ses,
    parse_arf,
    parse_dsn,
)

OUR_ID = "<digest.7.42.0123456789abcdef@news.example.com>"
NOTICE_ID = "<notice.9.fedcba9876543210@news.example.com>"


def crlf(text: str) -> bytes:
    """As it comes off the wire; maildir files keep LF, both must parse."""
    return text.replace("\n", "\r\n").encode("utf-8")


POSTFIX_HARD = f"""Return-Path: <>
Delivered-To: digest@news.example.com
Date: Mon, 30 Nov 2026 09:00:04 +0000 (UTC)
From: MAILER-DAEMON@mx1.news.example.com (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: digest@news.example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="3A2B51C0F2.1764493204/mx1.news.example.com"
Message-Id: <20261130090004.1F2E3C0F3A@mx1.news.example.com>

This is a MIME-encapsulated message.

--3A2B51C0F2.1764493204/mx1.news.example.com
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx1.news.example.com.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<gone@example.org>: host mx.example.org[192.0.2.25] said: 550 5.1.1
    <gone@example.org>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--3A2B51C0F2.1764493204/mx1.news.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.news.example.com
X-Postfix-Queue-ID: 3A2B51C0F2
X-Postfix-Sender: rfc822; digest@news.example.com
Arrival-Date: Mon, 30 Nov 2026 09:00:01 +0000 (UTC)

Final-Recipient: rfc822; gone@example.org
Original-Recipient: rfc822;gone@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: Recipient address
    rejected: User unknown in virtual mailbox table

--3A2B51C0F2.1764493204/mx1.news.example.com
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <digest@news.example.com>
Received: by mx1.news.example.com (Postfix, from userid 1001)
	id 3A2B51C0F2; Mon, 30 Nov 2026 09:00:01 +0000 (UTC)
From: Political IQ <digest@news.example.com>
To: Gone Reader <gone@example.org>
Subject: Today's featured stories
Date: Mon, 30 Nov 2026 09:00:00 +0000
Message-ID: {OUR_ID}
List-Id: Featured Stories <featured.news.example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="===============123=="

--3A2B51C0F2.1764493204/mx1.news.example.com--
"""

POSTFIX_DELAYED = f"""From: MAILER-DAEMON@mx1.news.example.com (Mail Delivery System)
Subject: Delayed Mail (still being retried)
To: digest@news.example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="8C1D2E3F4A.1764507604/mx1.news.example.com"

--8C1D2E3F4A.1764507604/mx1.news.example.com
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx1.news.example.com.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

--8C1D2E3F4A.1764507604/mx1.news.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.news.example.com
X-Postfix-Queue-ID: 8C1D2E3F4A
Arrival-Date: Mon, 30 Nov 2026 09:00:01 +0000 (UTC)

Final-Recipient: rfc822; slow@example.net
Original-Recipient: rfc822;slow@example.net
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mx.example.net[198.51.100.7]:25:
    Connection timed out
Will-Retry-Until: Sat, 5 Dec 2026 09:00:01 +0000 (UTC)

--8C1D2E3F4A.1764507604/mx1.news.example.com
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Political IQ <digest@news.example.com>
To: slow@example.net
Message-ID: {OUR_ID}

--8C1D2E3F4A.1764507604/mx1.news.example.com--
"""

GMAIL_HARD = f"""Delivered-To: digest@news.example.com
Received: by 2002:a05:6a10:1234:b0:5a1:1111:2222 with SMTP id abc;
        Mon, 30 Nov 2026 01:00:05 -0800 (PST)
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: digest@news.example.com
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
References: {OUR_ID}
In-Reply-To: {OUR_ID}
X-Failed-Recipients: no.such.person@gmail.com
Message-ID: <6564a1b5.050a0220.abcd.0001.GMR@mx.google.com>
Date: Mon, 30 Nov 2026 01:00:05 -0800 (PST)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000c0ffee05f1a2b3c4"; report-type=delivery-status

--000000000000c0ffee05f1a2b3c4
Content-Type: multipart/alternative; boundary="000000000000c0ffee05f1a2b3c5"

--000000000000c0ffee05f1a2b3c5
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to no.such.person@gmail.com because the address couldn't be found, or is unable to receive mail.

Learn more here: https://support.google.com/mail/?p=NoSuchUser

The response was:

550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si1234567qkb.99 - gsmtp

--000000000000c0ffee05f1a2b3c5
Content-Type: text/html; charset="UTF-8"

<html><body><h2>Address not found</h2><p>Your message wasn't delivered to <a style='color:#212121;text-decoration:none'><b>no.such.person@gmail.com</b></a>.</p></body></html>

--000000000000c0ffee05f1a2b3c5--

--000000000000c0ffee05f1a2b3c4
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; digest@news.example.com
Arrival-Date: Mon, 30 Nov 2026 01:00:03 -0800 (PST)
X-Original-Message-ID: {OUR_ID}

Final-Recipient: rfc822; no.such.person@gmail.com
Action: failed
Status: 5.1.1
Remote-MTA: dns; gmail-smtp-in.l.google.com. (2607:f8b0:4864:20::1a, the server for the domain gmail.com.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try
 550-5.1.1 double-checking the recipient's email address for typos or
 550-5.1.1 unnecessary spaces. For more information, go to
 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si1234567qkb.99 - gsmtp
Last-Attempt-Date: Mon, 30 Nov 2026 01:00:05 -0800 (PST)

--000000000000c0ffee05f1a2b3c4
Content-Type: message/rfc822

Return-Path: <digest@news.example.com>
From: Political IQ <digest@news.example.com>
To: no.such.person@gmail.com
Subject: Today's featured stories
Message-ID: {OUR_ID}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset="utf-8"

Five stories for you today.
--inner
Content-Type: text/html; charset="utf-8"

<p>Five stories for you today.</p>
--inner--

--000000000000c0ffee05f1a2b3c4--
"""

GMAIL_OVER_QUOTA = GMAIL_HARD.replace("no.such.person@gmail.com", "full.box@gmail.com").replace(
    "Status: 5.1.1", "Status: 5.2.2").replace(
    "550-5.1.1 The email account that you tried to reach does not exist. Please try",
    "552-5.2.2 The recipient's inbox is out of storage space. Please direct the")

EXCHANGE_GENERIC_STATUS = f"""From: postmaster@corp.example.com
To: digest@news.example.com
Subject: Undeliverable: Today's featured stories
Content-Type: multipart/report; report-type=delivery-status;
	boundary="_000_exchange_"
MIME-Version: 1.0

--_000_exchange_
Content-Type: text/plain; charset="us-ascii"

Your message to left@corp.example.com couldn't be delivered.

--_000_exchange_
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com
Received-From-MTA: dns;mx1.news.example.com
Arrival-Date: Mon, 30 Nov 2026 09:00:02 +0000

Original-Recipient: rfc822;Left@corp.example.com
Final-Recipient: rfc822;left@corp.example.com
Action: failed
Status: 5.0.0
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup

--_000_exchange_
Content-Type: text/rfc822-headers

From: Political IQ <digest@news.example.com>
To: <Left@corp.example.com>
Message-ID: {OUR_ID}

--_000_exchange_--
"""

MIXED_RECIPIENTS = f"""From: MAILER-DAEMON@relay.example.com
To: digest@news.example.com
Subject: Delivery report
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Mixed results.
--b
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.com

Final-Recipient: rfc822; fine@example.com
Action: delivered
Status: 2.0.0

Final-Recipient: rfc822; expired@example.com
Action: failed
Status: 4.4.7
Diagnostic-Code: X-Postfix; delivery temporarily suspended: connect to
    mx.example.com[203.0.113.5]:25: Connection refused

Final-Recipient: rfc822; blocked@example.com
Action: failed
Status: 5.7.1
Diagnostic-Code: smtp; 550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using Spamhaus

--b
Content-Type: text/rfc822-headers

Message-ID: {NOTICE_ID}
--b--
"""

ARF_ABUSE = f"""From: <staff@fbl.example.net>
Date: Mon, 30 Nov 2026 10:12:01 +0000
Subject: FW: Today's featured stories
To: <abuse@news.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
198.51.100.10 on Mon, 30 Nov 2026 09:00:03 +0000.
For more information about this format please see
https://www.rfc-editor.org/rfc/rfc5965.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <digest@news.example.com>
Original-Rcpt-To: <Complainer@Example.org>
Arrival-Date: Mon, 30 Nov 2026 09:00:03 +0000
Reporting-MTA: dns; mail.fbl.example.net
Source-IP: 198.51.100.10
Authentication-Results: mail.fbl.example.net;
     spf=pass smtp.mail=digest@news.example.com;
     dkim=pass header.d=news.example.com
Reported-Domain: news.example.com

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: Political IQ <digest@news.example.com>
Received: from mx1.news.example.com (mx1.news.example.com [198.51.100.10])
      by mail.fbl.example.net with ESMTP id M63d4137594e46;
      Mon, 30 Nov 2026 09:00:03 +0000
To: <Complainer@Example.org>
Subject: Today's featured stories
Message-ID: {OUR_ID}
Date: Mon, 30 Nov 2026 09:00:00 +0000
MIME-Version: 1.0
Content-Type: text/plain

Five stories for you today.

--part1_13d.2e68ed54_boundary--
"""

# Microsoft-style: the recipient is redacted, the returned headers still carry the Message-ID.
ARF_REDACTED = f"""From: staff@hotmail.com
To: abuse@news.example.com
Subject: complaint about message from 198.51.100.10
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="jmrp"

--jmrp
Content-Type: text/plain

This is an email abuse report.
--jmrp
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Hotmail FBL
Version: 1
Original-Mail-From: <digest@news.example.com>
Arrival-Date: Mon, 30 Nov 2026 09:00:03 +0000

--jmrp
Content-Type: text/rfc822-headers

From: Political IQ <digest@news.example.com>
To: <redacted>
Message-ID: {OUR_ID}
--jmrp--
"""

ARF_NOT_SPAM = ARF_ABUSE.replace("Feedback-Type: abuse", "Feedback-Type: not-spam")

HUMAN_REPLY = """From: Someone <gone@example.org>
To: digest@news.example.com
Subject: Undelivered Mail Returned to Sender
Content-Type: text/plain

Final-Recipient: rfc822; gone@example.org
Action: failed
Status: 5.1.1
"""

VACATION = """From: Reader <reader@example.org>
To: digest@news.example.com
Subject: Out of office: Today's featured stories
Auto-Submitted: auto-replied
Content-Type: text/plain

I am away until Monday.
"""

SAMPLES = {"postfix-hard": POSTFIX_HARD, "postfix-delayed": POSTFIX_DELAYED, "gmail-hard": GMAIL_HARD,
           "gmail-over-quota": GMAIL_OVER_QUOTA, "exchange": EXCHANGE_GENERIC_STATUS,
           "mixed": MIXED_RECIPIENTS, "arf": ARF_ABUSE, "arf-redacted": ARF_REDACTED,
           "arf-not-spam": ARF_NOT_SPAM, "human": HUMAN_REPLY, "vacation": VACATION}


# ------------------------------------------------------------------ RFC 3464


@pytest.mark.parametrize("encode", [crlf, str.encode], ids=["crlf", "lf"])
def test_postfix_user_unknown_is_a_hard_bounce_with_our_message_id(encode) -> None:  # type: ignore[no-untyped-def]
    [report] = parse_dsn(encode(POSTFIX_HARD))
    assert report == DeliveryReport(
        recipient="gone@example.org", action="failed", status="5.1.1",
        diagnostic="550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
        message_id=OUR_ID)
    assert events_from_message(encode(POSTFIX_HARD)) == [FeedbackEvent(
        "hard", "dsn", "gone@example.org", OUR_ID, status="5.1.1", diagnostic=report.diagnostic)]


def test_postfix_delay_warning_is_a_soft_bounce() -> None:
    [report] = parse_dsn(crlf(POSTFIX_DELAYED))
    assert (report.recipient, report.action, report.status, report.message_id) == (
        "slow@example.net", "delayed", "4.4.1", OUR_ID)
    assert report.diagnostic == "connect to mx.example.net[198.51.100.7]:25: Connection timed out"
    [event] = events_from_message(crlf(POSTFIX_DELAYED))
    assert event.kind == "soft"


def test_gmail_no_such_user_reads_the_folded_diagnostic_and_the_attached_message() -> None:
    [report] = parse_dsn(crlf(GMAIL_HARD))
    assert report.recipient == "no.such.person@gmail.com"
    assert (report.action, report.status, report.message_id) == ("failed", "5.1.1", OUR_ID)
    assert report.diagnostic is not None
    assert report.diagnostic.startswith("550-5.1.1 The email account that you tried to reach does not exist.")
    assert "\n" not in report.diagnostic and "  " not in report.diagnostic
    assert [e.kind for e in events_from_message(crlf(GMAIL_HARD))] == ["hard"]


def test_gmail_style_x_original_message_id_is_used_when_no_headers_come_back() -> None:
    without_original = GMAIL_HARD.split("--000000000000c0ffee05f1a2b3c4\nContent-Type: message/rfc822")[0]
    [report] = parse_dsn(crlf(without_original + "--000000000000c0ffee05f1a2b3c4--\n"))
    assert report.message_id == OUR_ID


def test_a_full_mailbox_is_soft_even_with_a_5xx() -> None:
    [event] = events_from_message(crlf(GMAIL_OVER_QUOTA))
    assert (event.kind, event.recipient, event.status) == ("soft", "full.box@gmail.com", "5.2.2")


def test_a_generic_exchange_status_takes_the_precise_code_from_the_diagnostic() -> None:
    [report] = parse_dsn(crlf(EXCHANGE_GENERIC_STATUS))
    assert report.recipient == "Left@corp.example.com"  # Original-Recipient: what we sent to
    assert report.status == "5.0.0"
    [event] = events_from_message(crlf(EXCHANGE_GENERIC_STATUS))
    assert (event.kind, event.status) == ("hard", "5.1.10")


def test_several_recipients_delivered_ones_dropped_expiry_and_policy_blocks_soft() -> None:
    reports = parse_dsn(crlf(MIXED_RECIPIENTS))
    assert [(r.recipient, r.action, r.status) for r in reports] == [
        ("expired@example.com", "failed", "4.4.7"), ("blocked@example.com", "failed", "5.7.1")]
    assert all(r.message_id == NOTICE_ID for r in reports)
    assert [e.kind for e in events_from_message(crlf(MIXED_RECIPIENTS))] == ["soft", "soft"]


def test_recipients_per_report_are_capped() -> None:
    blocks = "".join(f"\nFinal-Recipient: rfc822; r{i}@example.com\nAction: failed\nStatus: 5.1.1\n"
                     for i in range(RECIPIENTS_MAX_PER_REPORT + 50))
    raw = MIXED_RECIPIENTS.replace("Reporting-MTA: dns; relay.example.com\n", "Reporting-MTA: dns; r\n" + blocks)
    assert len(parse_dsn(crlf(raw))) == RECIPIENTS_MAX_PER_REPORT


@pytest.mark.parametrize("action,status,diagnostic,kind", [
    ("failed", "5.1.1", None, "hard"),
    ("failed", "5.1.10", None, "hard"),
    ("failed", "5.4.4", None, "hard"),
    ("failed", "5.5.0", None, "hard"),
    ("Failed", "5.0.0", "550 5.1.1 user unknown", "hard"),
    ("failed", "5.0.0", "552 5.2.2 mailbox full", "soft"),
    ("failed", "5.2.2", None, "soft"),
    ("failed", "5.3.4", None, "soft"),
    ("failed", "5.7.1", None, "soft"),
    ("failed", "5.7.26", "550 5.7.26 unauthenticated email", "soft"),
    ("failed", "4.4.7", None, "soft"),
    ("failed", None, None, "soft"),
    ("failed", "garbage", None, "soft"),
    ("delayed", "4.4.1", None, "soft"),
    ("delivered", "2.0.0", None, None),
    ("relayed", "2.0.0", None, None),
    ("expanded", "2.0.0", None, None),
])
def test_classify(action: str, status: str | None, diagnostic: str | None, kind: str | None) -> None:
    assert classify(action, status, diagnostic) == kind


def test_effective_status_keeps_a_precise_status_over_the_diagnostic() -> None:
    assert effective_status("5.1.1", "550 5.7.1 whatever") == "5.1.1"
    assert effective_status("5.0.0", "451 4.3.0 other class") == "5.0.0"
    assert effective_status(None, "smtp; 550 5.1.1 nope") == "5.1.1"
    assert effective_status(None, None) is None


# ------------------------------------------------------------------ RFC 5965


def test_arf_abuse_report_names_the_recipient_and_our_message() -> None:
    assert parse_arf(crlf(ARF_ABUSE)) == ComplaintReport("Complainer@Example.org", OUR_ID, "abuse")
    assert events_from_message(crlf(ARF_ABUSE)) == [
        FeedbackEvent("complaint", "arf", "Complainer@Example.org", OUR_ID, feedback_type="abuse")]
    assert parse_dsn(crlf(ARF_ABUSE)) == []


def test_arf_with_a_redacted_recipient_still_has_the_message_id() -> None:
    assert parse_arf(crlf(ARF_REDACTED)) == ComplaintReport(None, OUR_ID, "abuse")


def test_not_spam_feedback_is_parsed_but_is_no_complaint() -> None:
    report = parse_arf(crlf(ARF_NOT_SPAM))
    assert report is not None and report.feedback_type == "not-spam"
    assert events_from_message(crlf(ARF_NOT_SPAM)) == []


@pytest.mark.parametrize("name", ["human", "vacation"])
def test_ordinary_mail_is_no_report_even_when_it_looks_like_one(name: str) -> None:
    raw = crlf(SAMPLES[name])
    assert parse_dsn(raw) == [] and parse_arf(raw) is None and events_from_message(raw) == []


# ------------------------------------------------------------------ junk never raises


@pytest.mark.parametrize("raw", [
    b"",
    b"\x00" * 100,
    b"\xff\xfe" * 1000,
    random.Random(3464).randbytes(16384),
    b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n",
    b"Content-Type: multipart/report; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n--x--",
    (b"Content-Type: multipart/report; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n"
     b"Action: failed\r\nStatus: 5.1.1\r\nFinal-Recipient: rfc822; \xff\xfe@\x00\r\n--x--"),
    (b"Content-Type: multipart/report; boundary=x\r\n\r\n--x\r\nContent-Type: message/feedback-report\r\n\r\n"
     b"Feedback-Type: \xff\r\n--x--"),
    b"Content-Type: multipart/report; boundary=x\r\n\r\n" + b"--x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
    * 500,
    b"To: " + b"a" * 300_000 + b"\r\n\r\n",
], ids=["empty", "nul", "fffe", "random", "no-body", "empty-status", "binary-address", "binary-feedback-type",
        "nested", "huge-header"])
def test_junk_gives_nothing_and_never_raises(raw: bytes) -> None:
    assert events_from_message(raw) == []
    assert parse_arf(raw) is None


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_truncation_of_every_sample_parses_without_raising(name: str) -> None:
    raw = crlf(SAMPLES[name])
    for end in range(0, len(raw), 37):
        for result in (parse_dsn(raw[:end]), events_from_message(raw[:end])):
            assert isinstance(result, list)
        parse_arf(raw[:end])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    events_from_message(raw)
    events_from_message(crlf(POSTFIX_HARD)[:2000] + raw)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                max_size=4), max_leaves=20))
def test_arbitrary_json_never_raises(value: object) -> None:
    events_from_ses(value)
    events_from_ses({"notificationType": "Bounce", "bounce": value, "mail": value})
    events_from_sendgrid(value)
    events_from_sendgrid([value])


# ------------------------------------------------------------------ SES and SendGrid JSON


def ses_bounce(bounce_type: str, status: str = "5.1.1", message_id: str | None = OUR_ID) -> dict[str, object]:
    """An SES bounce notification as SNS carries it in `Message` (docs.aws.amazon.com, SES
    notification contents)."""
    return {
        "notificationType": "Bounce",
        "bounce": {
            "feedbackId": "0100018c1a2b3c4d-1234abcd-0000-0000-0000-000000000000-000000",
            "bounceType": bounce_type, "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": "gone@example.org", "action": "failed", "status": status,
                                   "diagnosticCode": f"smtp; 550 {status} user unknown"}],
            "timestamp": "2026-11-30T09:00:05.000Z", "remoteMtaIp": "192.0.2.25",
            "reportingMTA": "dsn; a8-12.smtp-out.amazonses.com",
        },
        "mail": {
            "timestamp": "2026-11-30T09:00:01.000Z", "source": "digest@news.example.com",
            "messageId": "0100018c1a2b3c4d-aaaa-bbbb-cccc-000000000000-000000",
            "destination": ["gone@example.org"], "headersTruncated": False,
            "commonHeaders": {"from": ["Political IQ <digest@news.example.com>"], "to": ["gone@example.org"],
                              "messageId": message_id, "subject": "Today's featured stories"},
        },
    }


def test_ses_permanent_bounce_is_hard_transient_soft_with_our_message_id() -> None:
    assert events_from_ses(ses_bounce("Permanent")) == [FeedbackEvent(
        "hard", "ses", "gone@example.org", OUR_ID, status="5.1.1", diagnostic="smtp; 550 5.1.1 user unknown")]
    [soft] = events_from_ses(ses_bounce("Transient", "4.2.2"))
    assert (soft.kind, soft.status) == ("soft", "4.2.2")
    [undetermined] = events_from_ses(ses_bounce("Undetermined"))
    assert undetermined.kind == "soft"
    [no_headers] = events_from_ses(ses_bounce("Permanent", message_id=None))
    assert no_headers.message_id is None and no_headers.recipient == "gone@example.org"


def test_ses_complaint_and_event_publishing_format() -> None:
    complaint = {
        "eventType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "Complainer@Example.org"}],
                      "timestamp": "2026-11-30T10:00:00.000Z", "feedbackId": "x",
                      "complaintFeedbackType": "abuse", "userAgent": "Yahoo!-Mail-Feedback/2.0"},
        "mail": {"commonHeaders": {"messageId": OUR_ID}},
    }
    assert events_from_ses(complaint) == [
        FeedbackEvent("complaint", "ses", "Complainer@Example.org", OUR_ID, feedback_type="abuse")]
    complaint["complaint"]["complaintFeedbackType"] = "not-spam"  # type: ignore[index]
    assert events_from_ses(complaint) == []
    assert events_from_ses({"notificationType": "Delivery", "delivery": {}, "mail": {}}) == []


def test_sendgrid_events() -> None:
    payload = json.loads(json.dumps([
        {"email": "gone@example.org", "timestamp": 1764493205, "smtp-id": OUR_ID, "event": "bounce",
         "type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 The email account does not exist",
         "sg_event_id": "ZGVsaXZlcmVk", "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001"},
        {"email": "busy@example.org", "timestamp": 1764493205, "event": "bounce", "type": "blocked",
         "status": "5.0.0", "reason": "550 5.7.1 blocked by policy"},
        {"email": "known-bad@example.org", "timestamp": 1764493205, "event": "dropped", "reason": "Bounced Address"},
        {"email": "left@example.org", "timestamp": 1764493205, "event": "dropped", "reason": "Unsubscribed Address"},
        {"email": "spam@example.org", "timestamp": 1764493205, "event": "spamreport", "smtp-id": OUR_ID},
        {"email": "spam2@example.org", "timestamp": 1764493205, "event": "dropped", "reason": "Spam Reporting Address"},
        {"email": "fine@example.org", "timestamp": 1764493205, "event": "delivered", "smtp-id": OUR_ID},
        {"email": "later@example.org", "timestamp": 1764493205, "event": "deferred"},
        "junk", 7, None,
    ]))
    assert [(e.kind, e.recipient, e.message_id) for e in events_from_sendgrid(payload)] == [
        ("hard", "gone@example.org", OUR_ID),
        ("soft", "busy@example.org", None),
        ("hard", "known-bad@example.org", None),
        ("complaint", "spam@example.org", OUR_ID),
        ("complaint", "spam2@example.org", None),
    ]
    assert events_from_sendgrid({"not": "a list"}) == []
