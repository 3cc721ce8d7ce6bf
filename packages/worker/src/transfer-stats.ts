// Counters of peer data transfers, kept by the Worker shell and read by its /metrics endpoint:
// requests and bytes fetched from peers (incoming) and served to peers and clients (outgoing).
// Plain fields: bumping them on the transfer paths costs nothing measurable.

export class TransferStats {
  /** `get-data` requests to peers that came back with data. */
  incomingCount = 0;
  /** Bytes of the values those requests brought (as the data store sizes them). */
  incomingBytes = 0;
  /** `get-data` requests served with data. */
  outgoingCount = 0;
  outgoingBytes = 0;
  /** `get-data` requests answered busy (the outgoing limit was reached). */
  outgoingBusy = 0;

  incoming(nbytes: number): void {
    this.incomingCount++;
    this.incomingBytes += nbytes;
  }

  outgoing(nbytes: number): void {
    this.outgoingCount++;
    this.outgoingBytes += nbytes;
  }
}
