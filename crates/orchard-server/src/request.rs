//! Reading MLflow requests from HTTP: a JSON body (POST, PATCH, DELETE) or a query string (GET) becomes the
//! [`Fields`] of `orchard-api`, and [`Req`] reads an endpoint's typed request out of them.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::Method;
use orchard_api::fields::{query_to_fields, FromFields};
pub use orchard_api::fields::Fields;
use orchard_tracking::TrackingError;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// An endpoint's request, read from the HTTP request (`Req<Fields>` for the fields themselves).
pub struct Req<T>(pub T);

impl<S: Send + Sync, T: FromFields> FromRequest<S> for Req<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let fields = read_fields(req, state).await?;
        Ok(Req(T::from_fields(&fields)?))
    }
}

async fn read_fields<S: Send + Sync>(req: Request, state: &S) -> Result<Fields, ApiError> {
    let query = req.uri().query().map(str::to_string);
    if req.method() == Method::GET {
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            return Ok(query_to_fields(&q));
        }
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|e| {
        ApiError::from(TrackingError::new(
            orchard_tracking::ErrorCode::BadRequest,
            format!("Could not read the request body: {e}"),
        ))
    })?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Fields(Map::new()));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(Fields(m)),
        // A JSON string holding JSON (some clients double-encode).
        Ok(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(m)) => Ok(Fields(m)),
            _ => Err(TrackingError::invalid("The request body must be a JSON object.").into()),
        },
        Ok(_) => Err(TrackingError::invalid("The request body must be a JSON object.").into()),
        Err(e) => Err(TrackingError::invalid(format!(
            "Malformed JSON in the request body: {e}"
        ))
        .into()),
    }
}

/// The answer of a handler: a JSON body, or MLflow's error.
pub type JsonResult = crate::error::ApiResult<axum::Json<Value>>;

/// MLflow's empty answer, `{}`, to a request that only changes something.
pub fn empty<T>(_: &T) -> JsonResult {
    Ok(axum::Json(Value::Object(Map::new())))
}

/// Handlers that are one call of the tracking service: `name(RequestType) => |tracking, request|
/// answer(call)` reads the request, awaits the call and shapes its result with `answer` (`empty` for `{}`).
/// Handlers that do more than that are written out.
macro_rules! one_call_handlers {
    ($($name:ident($req:ident) => |$t:ident, $r:ident| $answer:ident($call:expr);)*) => {$(
        async fn $name(
            ::axum::extract::State(state): ::axum::extract::State<$crate::state::AppState>,
            $crate::request::Req($r): $crate::request::Req<::orchard_api::requests::$req>,
        ) -> $crate::request::JsonResult {
            let $t = &state.tracking;
            $answer(&$call.await?)
        }
    )*};
}
pub(crate) use one_call_handlers;
