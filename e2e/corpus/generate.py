#!/usr/bin/env python3
"""Generates the MIME test corpus e2e/corpus/NN-short-name.eml (stdlib only).

Every message is written with CRLF line endings. The messages are deliberately varied:
structure (nested multiparts, message/rfc822), header encodings (RFC 2047, RFC 2231),
address syntax (groups, comments, quoted names) and malformations. Re-run after editing:

    python3 e2e/corpus/generate.py
"""
import base64
import os
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

PNG = base64.b64encode(
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    + b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
).decode()
PDF_BYTES = b"%PDF-1.4\n" + zlib.compress(b"hello pdf " * 40) + b"\n%%EOF\n"


def b64lines(data: bytes) -> str:
    s = base64.b64encode(data).decode()
    return "\n".join(s[i : i + 76] for i in range(0, len(s), 76))


PDF = b64lines(PDF_BYTES)

M = {}

M["01-simple-text"] = """\
From: Alice Example <alice@example.com>
To: Bob Example <bob@example.org>
Subject: Simple text message
Date: Mon, 2 Jan 2023 10:00:00 +0000
Message-ID: <simple-1@example.com>

Hello Bob,

this is a plain text message.
--
Alice
"""

M["02-no-content-type"] = """\
From: alice@example.com
To: bob@example.org
Subject: no content type
Date: 3 Jan 2023 11:12:13 -0500

Body without any MIME headers.
"""

M["03-empty-body"] = """\
From: alice@example.com
To: bob@example.org
Subject: empty body
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

"""

M["04-headers-only"] = """\
From: alice@example.com
Subject: header only, no blank line
"""

M["05-multipart-alternative"] = """\
From: "Alice A." <alice@example.com>
To: bob@example.org, carol@example.net
Cc: Dave <dave@example.com>
Subject: alternative
Date: Tue, 4 Apr 2023 08:30:00 +0200
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-boundary"

This is a multi-part message in MIME format.

--alt-boundary
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

Gr=C3=BC=C3=9Fe aus K=C3=B6ln
--alt-boundary
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<html><body><p>Gr=C3=BC=C3=9Fe aus K=C3=B6ln</p></body></html>
--alt-boundary--
epilogue text
"""

M["06-nested-3-levels"] = f"""\
From: alice@example.com
To: bob@example.org
Subject: three levels
Date: Wed, 5 Apr 2023 09:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="middle"

--middle
Content-Type: text/plain; charset=us-ascii

plain version
--middle
Content-Type: multipart/related; boundary="inner"; type="text/html"

--inner
Content-Type: text/html; charset=us-ascii

<html><img src="cid:img1@example.com"></html>
--inner
Content-Type: image/png; name="dot.png"
Content-Transfer-Encoding: base64
Content-ID: <img1@example.com>
Content-Disposition: inline; filename="dot.png"

{PNG}
--inner--

--middle--

--outer
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="report.pdf"; size=123
Content-Description: Quarterly report

{PDF}
--outer--
"""

M["07-rfc2047-q-b"] = """\
From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>
To: =?ISO-8859-1?B?Sm9zZSBHb256YWxleg==?= <jose@example.es>
Subject: =?UTF-8?B?w4RwZmVsIHVuZCBCaXJuZW4=?= and =?ISO-8859-15?Q?caf=E9?=
Date: Thu, 6 Apr 2023 12:00:00 +0100
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Äpfel und Birnen.
"""

M["08-rfc2047-charsets"] = """\
From: =?koi8-r?B?6dfBziDp18HOz9c=?= <ivan@example.ru>
To: =?shift_jis?B?k2qWe4zq?= <taro@example.jp>
Subject: =?windows-1252?Q?=93quoted=94_text?=
 =?utf-8?q?_folded_=E2=9C=93?=
Date: Fri, 7 Apr 2023 13:14:15 +0900
MIME-Version: 1.0
Content-Type: text/plain; charset=koi8-r
Content-Transfer-Encoding: base64

8NLJ18XUIM3J0iEK
"""

M["09-rfc2231-params"] = """\
From: alice@example.com
To: bob@example.org
Subject: RFC 2231 parameters
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b2231"

--b2231
Content-Type: text/plain; charset=us-ascii

See attachments.
--b2231
Content-Type: application/octet-stream;
 name*0="very-long-file";
 name*1="name-continued.bin"
Content-Disposition: attachment;
 filename*0*=UTF-8''%C3%A4rger;
 filename*1*=%20und%20mehr.txt
Content-Transfer-Encoding: base64

aGVsbG8gd29ybGQK
--b2231
Content-Type: text/plain; charset*=us-ascii'en-us'us-ascii;
 title*=iso-8859-1'de'Gr%FC%DFe
Content-Disposition: inline; filename*=utf-8'fr'r%C3%A9sum%C3%A9.txt

bonjour
--b2231--
"""

M["10-attachment-pdf"] = f"""\
From: Reports <reports@example.com>
To: bob@example.org
Subject: Your PDF
Date: Sat, 8 Apr 2023 07:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed;
\tboundary="----=_Part_0_12345.67890"

------=_Part_0_12345.67890
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 7bit

Please find the report attached.
------=_Part_0_12345.67890
Content-Type: application/pdf; name=invoice.pdf
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename=invoice.pdf

{PDF}
------=_Part_0_12345.67890--
"""

M["11-message-rfc822"] = f"""\
From: alice@example.com
To: bob@example.org
Subject: Fwd: inner message
Date: Sun, 9 Apr 2023 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd"

--fwd
Content-Type: text/plain

See the forwarded message.
--fwd
Content-Type: message/rfc822
Content-Disposition: inline

From: Carol <carol@example.net>
To: alice@example.com
Subject: inner message
Date: Sat, 8 Apr 2023 09:00:00 -0700
Message-ID: <inner@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="innerb"

--innerb
Content-Type: text/plain; charset=us-ascii

inner text
--innerb
Content-Type: image/png
Content-Transfer-Encoding: base64

{PNG}
--innerb--

--fwd--
"""

M["12-message-rfc822-top"] = """\
From: alice@example.com
To: bob@example.org
Subject: top-level message/rfc822
MIME-Version: 1.0
Content-Type: message/rfc822

From: dave@example.com
To: alice@example.com
Subject: the wrapped one

wrapped body
line two
"""

M["13-malformed-headers"] = """\
From: alice@example.com
To: bob@example.org
This line has no colon at all
Subject: malformed headers
X-Overlong: """ + ("abcdefghij" * 120) + """
Subject: duplicate subject
Date: not a date at all
Content-Type: text/plain; charset=

body after malformed headers
"""

M["14-bad-encoded-words"] = """\
From: =?UTF-8?Q?broken <alice@example.com>
To: =?UTF-8?X?unknown_encoding?= <bob@example.org>
Subject: =?utf-8?B?!!!notbase64!!!?= trailing =?unknown-charset?Q?abc?=
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

text
"""

M["15-8bit-latin1-undeclared"] = (
    b"From: alice@example.com\n"
    b"To: bob@example.org\n"
    b"Subject: latin-1 body without charset\n"
    b"\n"
    b"Gr\xfc\xdfe aus M\xfcnchen, \xe7a va?\n"
)

M["16-8bit-utf8-undeclared"] = (
    "From: alice@example.com\n"
    "To: bob@example.org\n"
    "Subject: utf-8 body without charset\n"
    "MIME-Version: 1.0\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Grüße aus München — ça va? 日本語\n"
).encode("utf-8")

M["17-missing-final-boundary"] = """\
From: alice@example.com
To: bob@example.org
Subject: missing final boundary
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="nofinal"

--nofinal
Content-Type: text/plain

first part
--nofinal
Content-Type: text/plain

second part, and the message just ends
"""

M["18-group-addresses"] = """\
From: alice@example.com
To: undisclosed-recipients:;
Cc: Friends: bob@example.org, "Carol C" <carol@example.net>;, dave@example.com
Bcc: Team:;
Subject: groups
Date: Mon, 10 Apr 2023 10:00:00 +0000

group test
"""

M["19-quoted-names-comments"] = """\
From: "Doe, John \\"JD\\"" <john.doe@example.com>
To: bob@example.org (Bob the Builder), "O'Reilly" <oreilly@example.com>
Cc: <angle.only@example.com>, plain@example.com (comment (nested))
Reply-To: John Doe <reply@example.com>
Subject: quoted names and comments
Date: Tue, 11 Apr 2023 10:00:00 +0000 (UTC)

names
"""

M["20-disposition-language-location"] = """\
From: alice@example.com
To: bob@example.org
Subject: disposition language location
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="dll"
Content-Language: en

--dll
Content-Type: text/plain; charset=us-ascii
Content-Language: en, de
Content-Location: http://example.com/text.txt
Content-Disposition: inline

english and german
--dll
Content-Type: text/html; charset=us-ascii
Content-Language: fr
Content-Disposition: attachment; filename="page.html"; creation-date="Wed, 12 Feb 1997 16:29:51 -0500"
Content-Location: page.html

<p>bonjour</p>
--dll--
"""

M["21-content-md5"] = """\
From: alice@example.com
To: bob@example.org
Subject: content-md5
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-ID: <md5part@example.com>
Content-Description: text with md5

Check Integrity!
"""

M["22-sender-replyto-bcc"] = """\
From: Alice <alice@example.com>
Sender: Secretary <secretary@example.com>
Reply-To: list@example.com, "Alice Home" <alice@home.example>
To: bob@example.org
Cc: carol@example.net
Bcc: hidden@example.com
Subject: sender reply-to bcc
Date: Wed, 12 Apr 2023 10:00:00 +0000
Message-ID: <sender-test@example.com>
In-Reply-To: <parent@example.com>
References: <grandparent@example.com> <parent@example.com>

body
"""

M["23-messageid-variations"] = """\
From: alice@example.com
To: bob@example.org
Subject: message-id variations
Message-ID:
 <folded-id@example.com>
In-Reply-To: <a@example.com> (comment) <b@example.com>
Date: Thu, 13 Apr 2023 10:00:00 GMT

ids
"""

M["24-no-from-no-date"] = """\
Subject: only subject

no from, no date, no to
"""

M["25-folded-subject"] = """\
From: alice@example.com
To: bob@example.org,
 carol@example.net,
\tdave@example.com
Subject: a folded
 subject line
\twith a tab
Date: Fri, 14 Apr 2023
 10:00:00 +0000

folded
"""

M["26-quoted-printable-soft"] = """\
From: alice@example.com
To: bob@example.org
Subject: qp soft breaks
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

This is a long line that is broken with a soft line break right here =
and continues, with an equals =3D sign and latin-1 =E9=E8=E0.
"""

M["27-unknown-cte"] = """\
From: alice@example.com
To: bob@example.org
Subject: unknown transfer encoding
MIME-Version: 1.0
Content-Type: application/octet-stream
Content-Transfer-Encoding: x-uuencode

begin 644 test.txt
%:&5L;&\\*
`
end
"""

M["28-multipart-digest"] = """\
From: digest@example.com
To: bob@example.org
Subject: digest
MIME-Version: 1.0
Content-Type: multipart/digest; boundary="dig"

--dig

From: one@example.com
Subject: first in digest

first
--dig

From: two@example.com
Subject: second in digest

second
--dig--
"""

M["29-uppercase-types-params"] = """\
From: alice@example.com
To: bob@example.org
Subject: upper case types
MIME-Version: 1.0
Content-Type: TEXT/PLAIN; CHARSET="ISO-8859-1"; Format=Flowed; DelSp=Yes
Content-Transfer-Encoding: QUOTED-PRINTABLE

flowed text=20
continues
"""

M["30-encoded-filename-2047"] = """\
From: alice@example.com
To: bob@example.org
Subject: encoded filename
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="efn"

--efn
Content-Type: text/plain

see file
--efn
Content-Type: application/vnd.ms-excel; name="=?UTF-8?B?w5xiZXJzaWNodC54bHM=?="
Content-Disposition: attachment; filename="=?UTF-8?B?w5xiZXJzaWNodC54bHM=?="
Content-Transfer-Encoding: base64

AAECAwQFBgc=
--efn--
"""

M["31-nested-rfc822-in-rfc822"] = """\
From: alice@example.com
To: bob@example.org
Subject: double forward
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="lvl1"

--lvl1
Content-Type: message/rfc822

From: bob@example.org
To: alice@example.com
Subject: first forward
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="lvl2"

--lvl2
Content-Type: text/plain

middle
--lvl2
Content-Type: message/rfc822; name="original.eml"

From: carol@example.net
Subject: =?UTF-8?Q?the_=C3=B6riginal?=
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

=C3=B6riginal body
--lvl2--
--lvl1--
"""

M["32-preamble-whitespace-boundary"] = """\
From: alice@example.com
To: bob@example.org
Subject: boundary with trailing whitespace and preamble
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=simple

preamble line 1
preamble line 2
--simple  
Content-Type: text/plain

part one
--simple
Content-Type: text/enriched

<bold>part two</bold>
--simple--  
"""

M["33-address-edge-cases"] = """\
From: Undisclosed <>
To: "" <empty-name@example.com>, @route.example:routed@example.com, <@a.example,@b.example:src-route@example.com>
Cc: localonly, =?UTF-8?Q?Gr=C3=BC=C3=9F?= <gruss@example.com>
Subject: address edge cases

edge
"""

M["34-empty-multipart"] = """\
From: alice@example.com
Subject: multipart without parts
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="never-used"

just a preamble, no boundary ever appears
"""

M["35-binary-cte-and-params"] = """\
From: alice@example.com
To: bob@example.org
Subject: misc params
MIME-Version: 1.0
Content-Type: multipart/related; boundary="rel"; type="text/html"; start="<root@example.com>"

--rel
Content-Type: text/html; charset=utf-8
Content-ID: <root@example.com>
Content-Transfer-Encoding: 7bit

<html>root</html>
--rel
Content-Type: text/css
Content-Location: style.css

body {}
--rel--
"""

M["36-nested-close-then-outer"] = """\
From: alice@example.com
To: bob@example.org
Subject: inner close delimiter directly before outer delimiter
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="out"

--out
Content-Type: multipart/alternative; boundary="in"

--in
Content-Type: text/plain

plain
--in
Content-Type: text/html

<b>html</b>
--in--
--out
Content-Type: text/plain

tail part
--out--
"""

M["37-odd-content-types"] = """\
From: alice@example.com
To: bob@example.org
Subject: odd content types
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="odd"

--odd
Content-Type: text

no subtype
--odd
Content-Type: multipart/alternative

multipart without boundary parameter
--odd
Content-Type: text/plain ; charset = "utf-8" (a comment) ; format=flowed
Content-Transfer-Encoding:  8bit 

spaced params
--odd
Content-Type: message/rfc822
Content-Transfer-Encoding: base64

RnJvbTogeEB5DQpTdWJqZWN0OiBiNjQNCg0KYm9keQ0K
--odd--
"""

M["38-empty-and-odd-header-values"] = """\
From: "Alice (not a comment)" <alice@example.com> (real comment)
To:
Cc: ,, bob@example.org ,
Subject:
Date:   Sat, 15 Apr 2023 10:00:00 +0000   
Message-ID: <trailing-space@example.com>  
In-Reply-To:

empty values
"""

M["39-deep-nesting"] = """\
From: alice@example.com
To: bob@example.org
Subject: deep nesting
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="l1"

--l1
Content-Type: multipart/mixed; boundary="l2"

--l2
Content-Type: multipart/mixed; boundary="l3"

--l3
Content-Type: multipart/mixed; boundary="l4"

--l4
Content-Type: text/plain; charset=utf-8

deepest
--l4--

--l3--

--l2--

--l1--
"""

M["40-boundary-prefix-collision"] = """\
From: alice@example.com
To: bob@example.org
Subject: boundaries sharing a prefix
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: multipart/alternative; boundary="b-inner"

--b-inner
Content-Type: text/plain

alt one
--b-inner
Content-Type: text/plain

alt two
--b-inner--

--b
Content-Type: text/plain

outer two
--b--
"""


def crlf(data) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = data.replace(b"\r\n", b"\n")
    return data.replace(b"\n", b"\r\n")


def main() -> None:
    for name, body in M.items():
        with open(os.path.join(HERE, name + ".eml"), "wb") as f:
            f.write(crlf(body))
    print(f"wrote {len(M)} messages")


if __name__ == "__main__":
    main()
