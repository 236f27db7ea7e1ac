"""Properties of the HTTP parsers: the machine endpoints' form body and the HTTP Basic header.

For any input: a result of the documented shape or the documented refusal (None), never an
exception; and what a well-behaved client encodes comes back out unchanged.
"""

from __future__ import annotations

import base64
from urllib.parse import quote_plus, urlencode

from django.test import RequestFactory
from hypothesis import example, given, settings
from hypothesis import strategies as st

from authserver.introspection.endpoint import FORM, read_form
from authserver.introspection.service import presented_client_credentials
from authserver.oauth.clientauth import MAX_BASIC_LENGTH, basic_credentials

# Text a client can put in a form: any Unicode scalar value (lone surrogates cannot be UTF-8).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
_factory = RequestFactory()


def _form_request(body: bytes, content_type: str = FORM) -> object:
    return _factory.generic("POST", "/oauth/introspect", data=body, content_type=content_type)


# -- Form body (authserver.introspection.endpoint.read_form) -------------------------------------

@settings(max_examples=400)
@given(body=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
@example(body=b"token=%ff")  # percent-escape of invalid UTF-8
@example(body=b"token=%")  # a dangling escape
@example(body=b"a=1&a=2")  # a repeated parameter (RFC 6749 §3.2)
@example(body=b"&&&=&")
@example(body=b"\xff\xfe")
def test_form_body_is_a_dict_of_strings_or_refused(body: bytes) -> None:
    form = read_form(_form_request(body))
    assert form is None or all(isinstance(k, str) and isinstance(v, str) for k, v in form.items())


@settings(max_examples=300)
@given(fields=st.dictionaries(TEXT, TEXT, max_size=8))
def test_form_body_round_trips_what_a_client_encodes(fields: dict[str, str]) -> None:
    body = urlencode(fields).encode("ascii")
    assert read_form(_form_request(body)) == fields


@settings(max_examples=100)
@given(body=st.binary(max_size=200), content_type=st.sampled_from(["multipart/form-data; boundary=x",
                                                                   "application/json", "text/plain", ""]))
def test_other_content_types_never_raise(body: bytes, content_type: str) -> None:
    form = read_form(_form_request(body, content_type))
    assert form is None or isinstance(form, dict)


# -- HTTP Basic (authserver.oauth.clientauth.basic_credentials, RFC 6749 §2.3.1) ---------------------

@settings(max_examples=400)
@given(header=st.text(max_size=600) | st.text(st.characters(codec="latin-1"), max_size=80).map("Basic ".__add__))
@example(header="Basic \x80")  # WSGI hands headers over as latin-1: base64 refused it with ValueError (a 500)
@example(header="Basic")
@example(header="Basic ")
@example(header="Basic ====")
@example(header="Basic " + base64.b64encode(b"\xff:\xfe").decode())  # not UTF-8
@example(header="Basic " + base64.b64encode(b"no-colon").decode())
@example(header="Basic " + base64.b64encode(b"id:%ff%fe").decode())  # escapes of invalid UTF-8
@example(header="Basic " + "A" * (MAX_BASIC_LENGTH + 4))
@example(header="bAsIc " + base64.b64encode(b"a:b").decode())
def test_basic_header_is_a_pair_of_strings_or_refused(header: str) -> None:
    pair = basic_credentials(header)
    assert pair is None or (len(pair) == 2 and all(isinstance(part, str) for part in pair))
    presented = presented_client_credentials(header, {})
    assert presented == pair


@settings(max_examples=300)
@given(client_id=TEXT, secret=TEXT)
def test_basic_header_round_trips_what_a_client_encodes(client_id: str, secret: str) -> None:
    encoded = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()
    expected = (client_id, secret) if len(encoded) <= MAX_BASIC_LENGTH else None
    assert basic_credentials(f"Basic {encoded}") == expected
