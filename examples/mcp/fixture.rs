//! The MCP server behind the layer: the tools `add` and `admin-action`, and the fixture the
//! official conformance suite (`@modelcontextprotocol/conformance`, its default server
//! scenarios) expects, named and answering as the suite's reference server does: tools,
//! resources, a resource template, subscriptions, prompts, the logging level, completion,
//! progress and logging notifications, and server-to-client sampling and elicitation
//! requests (sent on the stream of the call that asks for them).
//!
//! Results are written as the JSON the suite's reference server answers and parsed into
//! rmcp's types, so each reads as the wire shows it.

// Logging, sampling and `resources/subscribe` are legacy in MCP 2026-07-28 (rmcp marks
// them deprecated); the suite's clients speak 2025-11-25 and test them.
#![allow(deprecated)]

use super::{ADMIN_SCOPE, ADMIN_TOOL};
use auth_diagnostics::authz::RequireScope;
use auth_diagnostics::Principal;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientResult, CompleteRequestParams,
    CompleteResult, CustomRequest, ErrorCode, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, LoggingMessageNotificationParam, PaginatedRequestParams,
    ProgressNotificationParam, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ServerCapabilities, ServerConfig, ServerRequest, SetLevelRequestParams, SubscribeRequestParams,
    UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A 1×1 red PNG, the suite's test image.
const IMAGE: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A minimal WAV file, the suite's test audio.
const AUDIO: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// The resource clients subscribe to.
const WATCHED: &str = "test://watched-resource";

/// The MCP server of one session: the tools `add` and `admin-action`, with the suite's
/// fixture when it is [`Fixture::conformance`], and the resources the client subscribed to.
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    conformance: bool,
    subscriptions: Arc<Mutex<BTreeSet<String>>>,
}

/// `value` (JSON the suite's reference server answers) as rmcp's type `T`.
fn from_json<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("the fixture's JSON matches rmcp's types")
}

/// A result whose content is one text block.
fn text(text: impl Into<String>) -> CallToolResponse {
    from_json::<CallToolResult>(json!({ "content": [{ "type": "text", "text": text.into() }] }))
        .into()
}

/// An object schema with `properties`, every one of them required.
fn object_schema(properties: Value) -> Value {
    let required: Vec<&String> = properties
        .as_object()
        .map_or(Vec::new(), |p| p.keys().collect());
    json!({ "type": "object", "properties": properties, "required": required })
}

/// Every tool: name, description, input schema.
fn tools() -> Value {
    let none = || object_schema(json!({}));
    let tool = |name: &str, description: &str, schema: Value| json!({ "name": name, "description": description, "inputSchema": schema });
    json!([
        tool(
            "add",
            "Adds two numbers; says who asked.",
            object_schema(json!({ "a": { "type": "number" }, "b": { "type": "number" } })),
        ),
        tool(
            ADMIN_TOOL,
            "An administrative action: needs scope mcp:admin.",
            none()
        ),
        tool(
            "test_simple_text",
            "Tests simple text content response",
            none()
        ),
        tool("test_image_content", "Tests image content response", none()),
        tool("test_audio_content", "Tests audio content response", none()),
        tool(
            "test_embedded_resource",
            "Tests embedded resource content response",
            none()
        ),
        tool(
            "test_multiple_content_types",
            "Tests response with multiple content types (text, image, resource)",
            none(),
        ),
        tool(
            "test_tool_with_logging",
            "Tests tool that emits log messages during execution",
            none(),
        ),
        tool(
            "test_tool_with_progress",
            "Tests tool that reports progress notifications",
            none(),
        ),
        tool(
            "test_error_handling",
            "Tests error response handling",
            none()
        ),
        tool(
            "test_reconnection",
            "Tests SSE stream disconnection and client reconnection (SEP-1699)",
            none(),
        ),
        tool(
            "test_sampling",
            "Tests server-initiated sampling (LLM completion request)",
            object_schema(json!({
                "prompt": { "type": "string", "description": "The prompt to send to the LLM" },
            })),
        ),
        tool(
            "test_elicitation",
            "Tests server-initiated elicitation (user input request)",
            object_schema(json!({
                "message": { "type": "string", "description": "The message to show the user" },
            })),
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Tests elicitation with default values per SEP-1034",
            none(),
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Tests elicitation with enum schema improvements per SEP-1330",
            none(),
        ),
        tool(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": {
                            "street": { "type": "string" },
                            "city": { "type": "string" },
                        },
                    },
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" },
                },
                "additionalProperties": false,
            }),
        ),
    ])
}

/// The schema of `test_elicitation_sep1034_defaults`: a default for every primitive type.
fn sep1034_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "User name", "default": "John Doe" },
            "age": { "type": "integer", "description": "User age", "default": 30 },
            "score": { "type": "number", "description": "User score", "default": 95.5 },
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active",
            },
            "verified": { "type": "boolean", "description": "Verification status", "default": true },
        },
        "required": [],
    })
}

/// The schema of `test_elicitation_sep1330_enums`: the five enum forms.
fn sep1330_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "description": "Select one option",
                "enum": ["option1", "option2", "option3"],
            },
            "titledSingle": {
                "type": "string",
                "description": "Select one option with titles",
                "oneOf": [
                    { "const": "value1", "title": "First Option" },
                    { "const": "value2", "title": "Second Option" },
                    { "const": "value3", "title": "Third Option" },
                ],
            },
            "legacyEnum": {
                "type": "string",
                "description": "Select one option (legacy)",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {
                "type": "array",
                "description": "Select multiple options",
                "minItems": 1,
                "maxItems": 3,
                "items": { "type": "string", "enum": ["option1", "option2", "option3"] },
            },
            "titledMulti": {
                "type": "array",
                "description": "Select multiple options with titles",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "anyOf": [
                        { "const": "value1", "title": "First Choice" },
                        { "const": "value2", "title": "Second Choice" },
                        { "const": "value3", "title": "Third Choice" },
                    ],
                },
            },
        },
        "required": [],
    })
}

/// Sends the client `method` with `params` and returns its answer as JSON.
async fn ask(peer: &Peer<RoleServer>, method: &str, params: Value) -> Result<Value, String> {
    let request = ServerRequest::CustomRequest(CustomRequest::new(method, Some(params)));
    let answer: ClientResult = peer
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_value(answer).map_err(|e| e.to_string())
}

/// An `elicitation/create` with `message` and `schema`, its answer in words.
async fn elicit(peer: &Peer<RoleServer>, message: &str, schema: Value, done: &str) -> String {
    let params = json!({ "message": message, "requestedSchema": schema });
    match ask(peer, "elicitation/create", params).await {
        Ok(answer) => format!(
            "{done}: action={}, content={}",
            answer["action"].as_str().unwrap_or_default(),
            answer.get("content").cloned().unwrap_or_else(|| json!({})),
        ),
        Err(e) => format!("Elicitation not supported or error: {e}"),
    }
}

/// A `notifications/message` at level info.
async fn log(peer: &Peer<RoleServer>, data: &str) {
    let param: LoggingMessageNotificationParam = from_json(json!({
        "level": "info", "logger": "conformance-test-server", "data": data,
    }));
    let _ = peer.notify_logging_message(param).await;
}

/// The text of an argument.
fn arg<'a>(request: &'a CallToolRequestParams, name: &str) -> &'a str {
    request
        .arguments
        .as_ref()
        .and_then(|a| a.get(name))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl Fixture {
    /// The tools `add` and `admin-action` only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything the conformance suite's server scenarios call, beside `add` and
    /// `admin-action`.
    pub fn conformance() -> Self {
        Self {
            conformance: true,
            ..Self::default()
        }
    }

    /// `Err(method not found)` for the suite's methods when the fixture is off.
    fn fixture_on(&self, method: &str) -> Result<(), ErrorData> {
        if self.conformance {
            Ok(())
        } else {
            Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("{method} is not served"),
                None,
            ))
        }
    }

    /// The suite's tools, or `None` for a name that is not one of them.
    async fn conformance_tool(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Option<CallToolResponse> {
        let peer = &context.peer;
        let content = |blocks: Value| -> CallToolResponse {
            from_json::<CallToolResult>(json!({ "content": blocks })).into()
        };
        let result = match &*request.name {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_image_content" => {
                content(json!([{ "type": "image", "data": IMAGE, "mimeType": "image/png" }]))
            }
            "test_audio_content" => {
                content(json!([{ "type": "audio", "data": AUDIO, "mimeType": "audio/wav" }]))
            }
            "test_embedded_resource" => content(json!([{
                "type": "resource",
                "resource": {
                    "uri": "test://embedded-resource",
                    "mimeType": "text/plain",
                    "text": "This is an embedded resource content.",
                },
            }])),
            "test_multiple_content_types" => content(json!([
                { "type": "text", "text": "Multiple content types test:" },
                { "type": "image", "data": IMAGE, "mimeType": "image/png" },
                {
                    "type": "resource",
                    "resource": {
                        "uri": "test://mixed-content-resource",
                        "mimeType": "application/json",
                        "text": json!({ "test": "data", "value": 123 }).to_string(),
                    },
                },
            ])),
            "test_tool_with_logging" => {
                for (i, step) in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ]
                .into_iter()
                .enumerate()
                {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    log(peer, step).await;
                }
                text("Tool with logging executed successfully")
            }
            "test_tool_with_progress" => {
                let token = context.meta.get_progress_token();
                let token_json = token
                    .as_ref()
                    .map_or(json!(0), |t| serde_json::to_value(t).unwrap_or(json!(0)));
                for (i, progress) in [0, 50, 100].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if token.is_some() {
                        let param: ProgressNotificationParam = from_json(json!({
                            "progressToken": token_json,
                            "progress": progress,
                            "total": 100,
                            "message": format!("Completed step {progress} of 100"),
                        }));
                        let _ = peer.notify_progress(param).await;
                    }
                }
                let token_text = match &token_json {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                text(token_text)
            }
            "test_error_handling" => from_json::<CallToolResult>(json!({
                "content": [{
                    "type": "text",
                    "text": "This tool intentionally returns an error for testing",
                }],
                "isError": true,
            }))
            .into(),
            // rmcp keeps the call's SSE stream open (with its priming event and `retry`)
            // and answers on it; a client that reconnects with Last-Event-ID is replayed.
            "test_reconnection" => text(
                "Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.",
            ),
            "test_sampling" => {
                let params = json!({
                    "messages": [{
                        "role": "user",
                        "content": { "type": "text", "text": arg(request, "prompt") },
                    }],
                    "maxTokens": 100,
                });
                match ask(peer, "sampling/createMessage", params).await {
                    Ok(answer) => {
                        let reply = answer["content"]["text"]
                            .as_str()
                            .or(answer["message"]["content"]["text"].as_str())
                            .unwrap_or("No response");
                        text(format!("LLM response: {reply}"))
                    }
                    Err(e) => text(format!("Sampling not supported or error: {e}")),
                }
            }
            "test_elicitation" => {
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "response": { "type": "string", "description": "User's response" },
                    },
                    "required": ["response"],
                });
                text(elicit(peer, arg(request, "message"), schema, "User response").await)
            }
            "test_elicitation_sep1034_defaults" => text(
                elicit(
                    peer,
                    "Please review and update the form fields with defaults",
                    sep1034_schema(),
                    "Elicitation completed",
                )
                .await,
            ),
            "test_elicitation_sep1330_enums" => text(
                elicit(
                    peer,
                    "Please select options from the enum fields",
                    sep1330_schema(),
                    "Elicitation completed",
                )
                .await,
            ),
            "json_schema_2020_12_tool" => {
                let args = request.arguments.clone().unwrap_or_default();
                text(format!(
                    "JSON Schema 2020-12 tool called with: {}",
                    Value::Object(args)
                ))
            }
            _ => return None,
        };
        Some(result)
    }
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        let capabilities: ServerCapabilities = if self.conformance {
            from_json(json!({
                "tools": {},
                "resources": { "subscribe": true },
                "prompts": {},
                "logging": {},
                "completions": {},
            }))
        } else {
            from_json(json!({ "tools": {} }))
        };
        ServerConfig::new(capabilities).with_server_info(Implementation::new(
            "auth-diagnostics-mcp-example",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = tools();
        if !self.conformance {
            // `add` and `admin-action`.
            tools.as_array_mut().expect("an array").truncate(2);
        }
        Ok(from_json(json!({ "tools": tools })))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // The layer authenticated the request before rmcp saw it.
        let principal = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>());
        let caller = principal.and_then(|p| p.id().map(str::to_owned));
        if request.name == ADMIN_TOOL {
            // McpScopes refused calls without the scope; the tool does not rely on it
            // having read the call the way rmcp does.
            if RequireScope::new([ADMIN_SCOPE]).check(principal).is_err() {
                return Err(ErrorData::invalid_request(
                    format!("{ADMIN_TOOL} needs scope {ADMIN_SCOPE}"),
                    None,
                ));
            }
            return Ok(
                CallToolResult::structured(json!({ "done": true, "caller": caller })).into(),
            );
        }
        if request.name == "add" {
            let args = request.arguments.unwrap_or_default();
            let number = |name: &str| {
                args.get(name).and_then(Value::as_f64).ok_or_else(|| {
                    ErrorData::invalid_params(format!("`{name}` must be a number"), None)
                })
            };
            let sum = number("a")? + number("b")?;
            return Ok(CallToolResult::structured(json!({ "sum": sum, "caller": caller })).into());
        }
        let answer = if self.conformance {
            self.conformance_tool(&request, &context).await
        } else {
            None
        };
        match answer {
            Some(result) => Ok(result),
            None => Err(ErrorData::invalid_params(
                format!("no tool {}", request.name),
                None,
            )),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.fixture_on("resources/list")?;
        Ok(from_json(json!({ "resources": [
            {
                "uri": "test://static-text",
                "name": "static-text",
                "title": "Static Text Resource",
                "description": "A static text resource for testing",
                "mimeType": "text/plain",
            },
            {
                "uri": "test://static-binary",
                "name": "static-binary",
                "title": "Static Binary Resource",
                "description": "A static binary resource (image) for testing",
                "mimeType": "image/png",
            },
            {
                "uri": WATCHED,
                "name": "watched-resource",
                "title": "Watched Resource",
                "description": "A resource clients subscribe to",
                "mimeType": "text/plain",
            },
        ] })))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.fixture_on("resources/templates/list")?;
        Ok(from_json(json!({ "resourceTemplates": [{
            "uriTemplate": "test://template/{id}/data",
            "name": "template",
            "title": "Resource Template",
            "description": "A resource template with parameter substitution",
            "mimeType": "application/json",
        }] })))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.fixture_on("resources/read")?;
        let uri = request.uri.as_str();
        let content = match uri {
            "test://static-text" => json!({
                "uri": uri, "mimeType": "text/plain",
                "text": "This is the content of the static text resource.",
            }),
            "test://static-binary" => json!({ "uri": uri, "mimeType": "image/png", "blob": IMAGE }),
            WATCHED => {
                json!({ "uri": uri, "mimeType": "text/plain", "text": "Watched resource content" })
            }
            _ => match uri
                .strip_prefix("test://template/")
                .and_then(|rest| rest.strip_suffix("/data"))
                .filter(|id| !id.is_empty() && !id.contains('/'))
            {
                Some(id) => json!({
                    "uri": uri,
                    "mimeType": "application/json",
                    "text": json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") })
                        .to_string(),
                }),
                None => {
                    return Err(ErrorData::resource_not_found(
                        format!("no resource {uri}"),
                        None,
                    ))
                }
            },
        };
        Ok(from_json::<ReadResourceResult>(json!({ "contents": [content] })).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixture_on("resources/subscribe")?;
        let uri = request.uri.to_string();
        log(&context.peer, &format!("Subscribed to resource: {uri}")).await;
        self.subscriptions.lock().expect("not poisoned").insert(uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixture_on("resources/unsubscribe")?;
        let uri = request.uri.to_string();
        log(&context.peer, &format!("Unsubscribed from resource: {uri}")).await;
        self.subscriptions
            .lock()
            .expect("not poisoned")
            .remove(&uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.fixture_on("prompts/list")?;
        let argument = |name: &str, description: &str| json!({ "name": name, "description": description, "required": true });
        Ok(from_json(json!({ "prompts": [
            {
                "name": "test_simple_prompt",
                "title": "Simple Test Prompt",
                "description": "A simple prompt without arguments",
            },
            {
                "name": "test_prompt_with_arguments",
                "title": "Prompt With Arguments",
                "description": "A prompt with required arguments",
                "arguments": [
                    argument("arg1", "First test argument"),
                    argument("arg2", "Second test argument"),
                ],
            },
            {
                "name": "test_prompt_with_embedded_resource",
                "title": "Prompt With Embedded Resource",
                "description": "A prompt that includes an embedded resource",
                "arguments": [argument("resourceUri", "URI of the resource to embed")],
            },
            {
                "name": "test_prompt_with_image",
                "title": "Prompt With Image",
                "description": "A prompt that includes image content",
            },
        ] })))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.fixture_on("prompts/get")?;
        let args = request.arguments.unwrap_or_default();
        let arg = |name: &str| args.get(name).and_then(Value::as_str).unwrap_or_default();
        let user = |content: Value| json!({ "role": "user", "content": content });
        let messages = match &*request.name {
            "test_simple_prompt" => json!([user(
                json!({ "type": "text", "text": "This is a simple prompt for testing." })
            )]),
            "test_prompt_with_arguments" => json!([user(json!({
                "type": "text",
                "text": format!("Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2")),
            }))]),
            "test_prompt_with_embedded_resource" => json!([
                user(json!({
                    "type": "resource",
                    "resource": {
                        "uri": arg("resourceUri"),
                        "mimeType": "text/plain",
                        "text": "Embedded resource content for testing.",
                    },
                })),
                user(
                    json!({ "type": "text", "text": "Please process the embedded resource above." })
                ),
            ]),
            "test_prompt_with_image" => json!([
                user(json!({ "type": "image", "data": IMAGE, "mimeType": "image/png" })),
                user(json!({ "type": "text", "text": "Please analyze the image above." })),
            ]),
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no prompt {other}"),
                    None,
                ));
            }
        };
        Ok(from_json::<GetPromptResult>(json!({ "messages": messages })).into())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixture_on("logging/setLevel")?;
        let level = serde_json::to_value(request.level).unwrap_or(json!("info"));
        let level = level.as_str().unwrap_or("info").to_owned();
        log(&context.peer, &format!("Log level set to: {level}")).await;
        Ok(())
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.fixture_on("completion/complete")?;
        // No suggestions: the suite checks the shape of the answer.
        Ok(from_json(json!({
            "completion": { "values": [], "total": 0, "hasMore": false },
        })))
    }
}
