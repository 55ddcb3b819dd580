//! placeholder: cluster CA (being written)
