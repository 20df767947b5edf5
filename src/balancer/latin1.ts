// Node's Buffer has latin1Slice/latin1Write (undocumented, used by undici): toString('latin1')
// and write(..., 'latin1') without the encoding dispatch, for HTTP heads (RFC 9110: octets).

interface Latin1Buffer {
  latin1Slice(start: number, end: number): string;
  latin1Write(text: string, offset: number, length?: number): number;
}

export function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1Buffer).latin1Slice(start, end);
}

/** Writes `text` at `offset`; returns the bytes written. */
export function writeLatin1(buf: Buffer, text: string, offset: number): number {
  return (buf as unknown as Latin1Buffer).latin1Write(text, offset);
}
