/**
 * A fetch whose response bodies report every chunk they deliver, for the download-bytes metric.
 * Only bodies of 200 and 206 answers are counted (the ones a download reads); the response keeps its
 * status and headers.
 */
export function countingFetch(inner: typeof fetch, onBytes: (bytes: number) => void): typeof fetch {
  const counted: typeof fetch = async (input, init) => {
    const response = await inner(input, init);
    if (!response.body || (response.status !== 200 && response.status !== 206)) return response;
    const counter = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        try {
          onBytes(chunk.byteLength);
        } catch {
          // Counting must never break a download.
        }
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(counter), { status: response.status, statusText: response.statusText, headers: response.headers });
  };
  return counted;
}
