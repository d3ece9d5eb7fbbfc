"""Mail out: an edition rendered once, each reader's copy built in microseconds, and the
transports that carry the bytes.

`render` (Jinja2 + premailer, once per story list) → `headers` (what every copy shares) →
`message` (the wire bytes per reader, quoted-printable, no email.message on the hot path)
→ `transport` (SMTP with pipelining, a weighted pool, an outbox folder, a recording list),
with `dkim` signing in the transport. Pure functions but the transports; nothing here
knows the database.
"""

from digest.mail.addresses import InvalidAddress, normalise_address
from digest.mail.brand import (
    BRAND_FIELDS,
    DEFAULT_BRAND,
    FONTS,
    Brand,
    BrandError,
    BrandStyle,
    check_brand,
    contrast_ratio,
    reader_page_accent,
)
from digest.mail.dkim import DkimError, DkimSigner
from digest.mail.headers import shared_headers
from digest.mail.links import (
    MASTHEAD_STORY,
    NONCE_PATTERN,
    TEST_NONCE,
    click_key,
    click_prefix,
    hash_nonce,
    history_key,
    new_click_nonce,
    nonce_sent_at,
    open_prefix,
    reader_part,
    split_reader,
    valid_click,
    valid_open,
)
from digest.mail.message import (
    HeaderInjection,
    MessageHeaders,
    Personal,
    WireMessage,
    assemble_message,
    build_message,
    build_message_stdlib,
    check_header_value,
    encode_address,
    list_unsubscribe,
    message_id_for,
)
from digest.mail.render import (
    EditionView,
    Reader,
    RenderedEdition,
    StoryView,
    check_email_templates,
    inline_css,
    reader_values,
    render_edition,
    render_template,
)
from digest.mail.templates import TemplateError, check_templates, template_error
from digest.mail.transport import (
    Connection,
    RecordingTransport,
    SendError,
    SmtpConnection,
    Transport,
    make_transport,
)

__all__ = [
    "BRAND_FIELDS", "DEFAULT_BRAND", "FONTS", "Brand", "BrandError", "BrandStyle", "check_brand", "contrast_ratio",
    "reader_page_accent",
    "MASTHEAD_STORY", "NONCE_PATTERN", "TEST_NONCE", "click_key", "click_prefix", "hash_nonce", "new_click_nonce", "nonce_sent_at",
    "valid_click", "history_key", "open_prefix", "reader_part", "split_reader", "valid_open",
    "Connection", "DkimError", "DkimSigner", "EditionView", "HeaderInjection", "InvalidAddress", "MessageHeaders", "Personal",
    "Reader", "RecordingTransport", "RenderedEdition", "SendError", "SmtpConnection", "StoryView", "TemplateError",
    "Transport", "WireMessage", "assemble_message", "build_message", "build_message_stdlib", "check_email_templates",
    "check_header_value", "check_templates",
    "encode_address", "inline_css", "list_unsubscribe", "make_transport", "message_id_for", "normalise_address", "reader_values",
    "render_edition", "render_template", "shared_headers", "template_error",
]
