"""Both signatures against the providers' own documented examples, byte for byte."""

from __future__ import annotations

import hashlib

from drivers.notifiers.cloud_sms.signing import (
    aliyun_canonical_query,
    aliyun_encode,
    aliyun_signature,
    aliyun_timestamp,
    tc3_authorization,
    tc3_canonical_request,
    tc3_signature,
    tc3_string_to_sign,
)

# Aliyun's SMS signature document ("HTTP协议及签名"): its worked example, verbatim values.
ALIYUN_DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
ALIYUN_DOC_QUERY = (
    "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou"
    "&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8"
    "&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0"
    "&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z"
    "&Version=2017-05-25"
)


def test_aliyun_documented_example() -> None:
    assert aliyun_canonical_query(ALIYUN_DOC_PARAMS) == ALIYUN_DOC_QUERY
    assert aliyun_signature("testSecret", "GET", ALIYUN_DOC_PARAMS) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_encoding_rules() -> None:
    """Space is %20 (not +), * is %2A, ~ stays: where a plain urlencode would break the signature."""
    assert aliyun_encode("a b*c~d+e/") == "a%20b%2Ac~d%2Be%2F"
    assert aliyun_timestamp(1499827339.9) == "2017-07-12T02:42:19Z"


def test_aliyun_method_is_part_of_the_signature() -> None:
    assert aliyun_signature("testSecret", "POST", ALIYUN_DOC_PARAMS) != aliyun_signature(
        "testSecret", "GET", ALIYUN_DOC_PARAMS
    )


# Tencent Cloud API 3.0 signature document (TC3-HMAC-SHA256): its worked CVM example, verbatim values.
TC3_PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
TC3_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
TC3_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"


def test_tc3_documented_example() -> None:
    assert hashlib.sha256(TC3_PAYLOAD).hexdigest() == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    canonical = tc3_canonical_request("cvm.tencentcloudapi.com", "application/json; charset=utf-8", TC3_PAYLOAD)
    assert canonical == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
        "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    to_sign = tc3_string_to_sign(1551113065, "cvm", canonical)
    assert to_sign == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    signature = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    assert tc3_signature(TC3_KEY, "2019-02-25", "cvm", to_sign) == signature
    assert tc3_authorization(TC3_ID, TC3_KEY, host="cvm.tencentcloudapi.com", service="cvm",
                             content_type="application/json; charset=utf-8", payload=TC3_PAYLOAD,
                             timestamp=1551113065) == (
        f"TC3-HMAC-SHA256 Credential={TC3_ID}/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, "
        f"Signature={signature}"
    )


def test_tc3_date_is_utc() -> None:
    """00:44 in Beijing on the 26th is still the 25th in UTC (the doc's own warning)."""
    assert "\n2019-02-25/sms/tc3_request\n" in tc3_string_to_sign(1551113065, "sms", "x")
