// SMS segments of a reply, for the counter under the SMS reply box: the same rules as
// channels/sms/encoding.py count_segments (tests/integration/messaging/test_sms_segments_js.py runs
// the same sample strings through both).
// GSM 03.38: 160 septets in one SMS, 153 per part of a long one (the 6-octet concatenation header);
// the extension characters take two septets (ESC + code). Anything outside it: UCS-2, 70 / 67 UTF-16
// code units (an emoji outside the BMP takes two). A character is never cut between two parts.

export const GSM7_SINGLE = 160;
export const GSM7_PART = 153;
export const UCS2_SINGLE = 70;
export const UCS2_PART = 67;

const GSM_BASIC = new Set(Array.from(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"));
const GSM_EXTENSION = new Set(Array.from("\f^{}\\[~]|€"));

/** { encoding: "gsm7"|"ucs2", units, segments, per_segment, remaining } of `text`. */
export function countSegments(text) {
  const chars = Array.from(text); // code points, as Python iterates a str
  const gsm = chars.every((ch) => GSM_BASIC.has(ch) || GSM_EXTENSION.has(ch));
  const sizes = gsm
    ? chars.map((ch) => (GSM_EXTENSION.has(ch) ? 2 : 1))
    : chars.map((ch) => (ch.codePointAt(0) > 0xffff ? 2 : 1));
  const [single, part] = gsm ? [GSM7_SINGLE, GSM7_PART] : [UCS2_SINGLE, UCS2_PART];
  const encoding = gsm ? "gsm7" : "ucs2";
  const units = sizes.reduce((a, b) => a + b, 0);
  if (units <= single) {
    return { encoding, units, segments: units ? 1 : 0, per_segment: single, remaining: single - units };
  }
  let segments = 1;
  let used = 0;
  for (const size of sizes) {
    if (used + size > part) { segments += 1; used = 0; }
    used += size;
  }
  return { encoding, units, segments, per_segment: part, remaining: part - used };
}
