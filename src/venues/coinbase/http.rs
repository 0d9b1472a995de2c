//! Coinbase REST: the public products list of Advanced Trade
//! (`GET /api/v3/brokerage/market/products`, no authentication).

use serde::Deserialize;

use crate::venues::{Instrument, ParseError};

/// Path of the public products list.
pub const PRODUCTS_PATH: &str = "/api/v3/brokerage/market/products";

#[derive(Deserialize)]
struct Products {
    products: Vec<Product>,
}

#[derive(Deserialize)]
struct Product {
    product_id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    trading_disabled: bool,
    #[serde(default)]
    is_disabled: bool,
    #[serde(default)]
    product_type: Option<String>,
}

/// Parses the products list into (product id, normalized symbol) pairs of online, tradable
/// spot products. Coinbase's product id is already `BASE-QUOTE`.
pub fn parse_products(body: &str) -> Result<Vec<(String, String)>, ParseError> {
    let p: Products = serde_json::from_str(body)?;
    let mut out: Vec<(String, String)> = p
        .products
        .into_iter()
        .filter(|p| {
            p.status.as_deref().is_none_or(|s| s == "online")
                && !p.trading_disabled
                && !p.is_disabled
                && p.product_type.as_deref().is_none_or(|t| t == "SPOT")
        })
        .filter(|p| Instrument::parse(&p.product_id).is_ok())
        .map(|p| (p.product_id.clone(), p.product_id))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}
