//! `POST audio/speech`: Gemini TTS (`TTS_MODEL`) with a prebuilt voice, the PCM it returns
//! wrapped as a WAV file (16-bit mono at the rate Gemini names, 24 kHz). `response_format: pcm`
//! returns the raw samples; other formats get WAV, the one container this gateway writes.

use std::io::Cursor;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use gb_proto::chat::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::parse_body;
use crate::auth::Caller;
use crate::errors::{openai_error, openai_error_with_param, openai_from_status};
use crate::state::{GatewayState, Translation};

/// Gemini's prebuilt voices.
const VOICES: &[&str] = &[
    "Zephyr",
    "Puck",
    "Charon",
    "Kore",
    "Fenrir",
    "Leda",
    "Orus",
    "Aoede",
    "Callirrhoe",
    "Autonoe",
    "Enceladus",
    "Iapetus",
    "Umbriel",
    "Algieba",
    "Despina",
    "Erinome",
    "Algenib",
    "Rasalgethi",
    "Laomedeia",
    "Achernar",
    "Alnilam",
    "Schedar",
    "Gacrux",
    "Pulcherrima",
    "Achird",
    "Zubenelgenubi",
    "Vindemiatrix",
    "Sadachbia",
    "Sadaltager",
    "Sulafat",
];

const MAX_INPUT_CHARS: usize = 4096;

#[derive(Deserialize)]
struct SpeechRequest {
    input: String,
    voice: Option<String>,
    speed: Option<f64>,
    response_format: Option<String>,
    instructions: Option<String>,
}

/// A Gemini voice by name (any case), else the configured default.
fn voice(requested: Option<&str>, default: &str) -> String {
    requested
        .and_then(|wanted| {
            VOICES
                .iter()
                .find(|voice| voice.eq_ignore_ascii_case(wanted))
        })
        .map_or_else(|| default.to_owned(), |voice| (*voice).to_owned())
}

/// `audio/L16;codec=pcm;rate=24000` → 24000.
fn sample_rate(mime: &str) -> u32 {
    mime.split(';')
        .filter_map(|parameter| parameter.trim().strip_prefix("rate="))
        .find_map(|rate| rate.parse().ok())
        .unwrap_or(24_000)
}

/// 16-bit little-endian mono PCM → a WAV file.
pub fn wav(pcm: &[u8], rate: u32) -> Result<Vec<u8>, hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut file = Cursor::new(Vec::with_capacity(pcm.len() + 44));
    {
        let mut writer = hound::WavWriter::new(&mut file, spec)?;
        let mut samples = writer.get_i16_writer(pcm.len() as u32 / 2);
        for pair in pcm.chunks_exact(2) {
            samples.write_sample(i16::from_le_bytes([pair[0], pair[1]]));
        }
        samples.flush()?;
        writer.finalize()?;
    }
    Ok(file.into_inner())
}

/// The Gemini TTS request of an OpenAI speech request: the speed and instructions as words of
/// the prompt, the voice as a prebuilt one. Refuses a speed out of OpenAI's range.
#[expect(clippy::result_large_err, reason = "the error is the ready answer")]
fn tts_request(request: &SpeechRequest, translation: &Translation) -> Result<Value, Response> {
    let speed = match request.speed {
        Some(speed) if !(0.25..=4.0).contains(&speed) => {
            return Err(openai_error_with_param(
                400,
                "speed must be between 0.25 and 4.0",
                Some("speed"),
            ));
        }
        Some(speed) if speed < 0.9 => "slow",
        Some(speed) if speed > 1.1 => "fast",
        _ => translation.tts_speed.as_str(),
    };
    let mut prompt = request.input.clone();
    if speed != "normal" {
        prompt = format!("Speak in a {speed} speed voice: {prompt}");
    }
    if let Some(instructions) = request
        .instructions
        .as_deref()
        .filter(|text| !text.trim().is_empty())
    {
        prompt = format!("{instructions}: {prompt}");
    }
    Ok(json!({
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {
                "voiceName": voice(request.voice.as_deref(), &translation.tts_voice_name)
            }}}
        }
    }))
}

/// The audio of a TTS answer: raw PCM, or the same samples in a WAV file.
#[expect(clippy::result_large_err, reason = "the error is the ready answer")]
fn audio_of(answer: &Value, raw_pcm: bool) -> Result<(Vec<u8>, &'static str), Response> {
    let Some(audio) = answer["candidates"][0]["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|part| part.get("inlineData"))
    else {
        return Err(openai_error(502, "the TTS model answered without audio"));
    };
    let Ok(pcm) = BASE64.decode(audio["data"].as_str().unwrap_or_default()) else {
        return Err(openai_error(
            502,
            "the TTS model's audio is not valid base64",
        ));
    };
    if raw_pcm {
        return Ok((pcm, "audio/pcm"));
    }
    let rate = sample_rate(audio["mimeType"].as_str().unwrap_or_default());
    wav(&pcm, rate)
        .map(|file| (file, "audio/wav"))
        .map_err(|error| openai_error(500, &format!("could not write the WAV file: {error}")))
}

pub async fn speech(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let request: SpeechRequest = match parse_body(&body) {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    if request.input.trim().is_empty() || request.input.chars().count() > MAX_INPUT_CHARS {
        return openai_error_with_param(400, "input must hold 1 to 4096 characters", Some("input"));
    }
    let raw_pcm = match request.response_format.as_deref() {
        None | Some("wav" | "mp3" | "opus" | "aac" | "flac") => false,
        Some("pcm") => true,
        Some(other) => {
            return openai_error_with_param(
                400,
                &format!("response_format {other:?} is unknown"),
                Some("response_format"),
            );
        }
    };
    let translation = state.translation.get();
    let body = match tts_request(&request, &translation) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let answer = state
        .chat
        .clone()
        .generate_content(pb::GeminiRequest {
            context: caller.call_context(),
            model: translation.tts_model.clone(),
            body: Bytes::from(body.to_string()),
        })
        .await;
    let answer = match answer {
        Ok(answer) => match super::upstream_json(&answer.into_inner().body) {
            Ok(answer) => answer,
            Err(malformed) => return malformed,
        },
        Err(status) => return openai_from_status(&status),
    };
    let (bytes, content_type) = match audio_of(&answer, raw_pcm) {
        Ok(audio) => audio,
        Err(refused) => return refused,
    };
    let mut response = Response::new(Body::from(bytes));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_and_rates() {
        assert_eq!(voice(Some("kore"), "Zephyr"), "Kore");
        assert_eq!(voice(Some("alloy"), "Zephyr"), "Zephyr");
        assert_eq!(sample_rate("audio/L16;codec=pcm;rate=24000"), 24_000);
        assert_eq!(sample_rate("audio/L16"), 24_000);
    }

    #[test]
    fn wav_header() {
        let file = wav(&[0, 0, 1, 0, 255, 255], 24_000).unwrap();
        assert_eq!(&file[..4], b"RIFF");
        assert_eq!(&file[8..12], b"WAVE");
        let reader = hound::WavReader::new(Cursor::new(file)).unwrap();
        let spec = reader.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 24_000, 16)
        );
        assert_eq!(
            reader
                .into_samples::<i16>()
                .map(Result::unwrap)
                .collect::<Vec<_>>(),
            vec![0, 1, -1]
        );
    }
}
