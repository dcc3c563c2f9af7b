// Server-Sent Events of the OpenAI streaming API, read from a fetch() Response.

import { ApiError } from './api.js';

// Yields each event's parsed JSON until `data: [DONE]` or the end of the stream. Bytes
// are decoded in streaming mode, so a character split across two network chunks
// (Chinese text, emoji) is decoded whole. An `{"error": ...}` event throws ApiError.
export async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder('utf-8');
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      for (;;) {
        const end = buffer.search(/\r?\n\r?\n/);
        if (end < 0) break;
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
        const data = block
          .split(/\r?\n/)
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).replace(/^ /, ''))
          .join('\n');
        if (!data) continue;
        if (data === '[DONE]') return;
        const event = JSON.parse(data);
        if (event.error) {
          throw new ApiError(event.error.status || 502, event.error.message || 'stream failed', event.error);
        }
        yield event;
      }
      if (done) return;
    }
  } finally {
    // A consumer that stops early (or an abort) must not leave the response open.
    reader.cancel().catch(() => {});
  }
}
