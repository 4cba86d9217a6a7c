// The Vercel AI SDK's default OpenAI provider (`openai(model)`, which speaks the Responses API)
// against the gateway: a plain text, a stream, and a tool the SDK runs between two steps.
// Prints what it got as one JSON line.
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';

const openai = createOpenAI({ baseURL: `${process.env.GATEWAY_URL}/v1`, apiKey: process.env.GATEWAY_TOKEN });

const plain = await generateText({ model: openai('gemini-2.5-flash'), prompt: 'hello ai sdk' });

const streamed = streamText({ model: openai('gemini-2.5-flash'), prompt: 'one two three' });
let text = '';
for await (const piece of streamed.textStream) text += piece;

const executed = [];
const withTool = await generateText({
  model: openai('gemini-3-pro-preview'),
  prompt: 'Paris',
  tools: {
    weather: tool({
      description: 'Current weather of a city',
      inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
      execute: async ({ city }) => {
        executed.push(city);
        return { city, celsius: 21 };
      },
    }),
  },
  stopWhen: stepCountIs(3),
});

console.log(JSON.stringify({
  plain: plain.text,
  plainUsage: plain.usage,
  streamed: text,
  toolText: withTool.text,
  steps: withTool.steps.length,
  executed,
}));
