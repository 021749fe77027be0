//! A coherent world for the shoppers: every city lies in its state, every state in its
//! country, and the coordinates are the city's. Weights give a realistic traffic skew.

/// (ISO country code, traffic weight, [(state, city, latitude, longitude)]).
pub type CountryRow = (
    &'static str,
    u32,
    &'static [(&'static str, &'static str, f64, f64)],
);

pub const COUNTRIES: &[CountryRow] = &[
    (
        "US",
        30,
        &[
            ("California", "Los Angeles", 34.0522, -118.2437),
            ("New York", "New York", 40.7128, -74.0060),
            ("Texas", "Houston", 29.7604, -95.3698),
            ("Illinois", "Chicago", 41.8781, -87.6298),
            ("Washington", "Seattle", 47.6062, -122.3321),
        ],
    ),
    (
        "GB",
        8,
        &[
            ("England", "London", 51.5074, -0.1278),
            ("Scotland", "Edinburgh", 55.9533, -3.1883),
            ("England", "Manchester", 53.4808, -2.2426),
        ],
    ),
    (
        "DE",
        8,
        &[
            ("Berlin", "Berlin", 52.5200, 13.4050),
            ("Bavaria", "Munich", 48.1351, 11.5820),
            ("Hamburg", "Hamburg", 53.5511, 9.9937),
        ],
    ),
    (
        "FR",
        6,
        &[
            ("Île-de-France", "Paris", 48.8566, 2.3522),
            ("Auvergne-Rhône-Alpes", "Lyon", 45.7640, 4.8357),
            ("Provence-Alpes-Côte d'Azur", "Marseille", 43.2965, 5.3698),
        ],
    ),
    (
        "IN",
        6,
        &[
            ("Maharashtra", "Mumbai", 19.0760, 72.8777),
            ("Karnataka", "Bengaluru", 12.9716, 77.5946),
            ("Delhi", "New Delhi", 28.6139, 77.2090),
        ],
    ),
    (
        "IT",
        5,
        &[
            ("Lombardia", "Milano", 45.4642, 9.1900),
            ("Lazio", "Roma", 41.9028, 12.4964),
            ("Campania", "Napoli", 40.8518, 14.2681),
        ],
    ),
    (
        "CA",
        5,
        &[
            ("Ontario", "Toronto", 43.6532, -79.3832),
            ("Quebec", "Montreal", 45.5017, -73.5673),
            ("British Columbia", "Vancouver", 49.2827, -123.1207),
        ],
    ),
    (
        "JP",
        5,
        &[
            ("Tokyo", "Tokyo", 35.6762, 139.6503),
            ("Osaka", "Osaka", 34.6937, 135.5023),
        ],
    ),
    (
        "ES",
        4,
        &[
            ("Madrid", "Madrid", 40.4168, -3.7038),
            ("Catalonia", "Barcelona", 41.3874, 2.1686),
        ],
    ),
    (
        "BR",
        4,
        &[
            ("São Paulo", "São Paulo", -23.5505, -46.6333),
            ("Rio de Janeiro", "Rio de Janeiro", -22.9068, -43.1729),
        ],
    ),
    (
        "NL",
        3,
        &[
            ("North Holland", "Amsterdam", 52.3676, 4.9041),
            ("South Holland", "Rotterdam", 51.9244, 4.4777),
        ],
    ),
    (
        "MX",
        3,
        &[
            ("Mexico City", "Mexico City", 19.4326, -99.1332),
            ("Jalisco", "Guadalajara", 20.6597, -103.3496),
        ],
    ),
    (
        "AU",
        3,
        &[
            ("New South Wales", "Sydney", -33.8688, 151.2093),
            ("Victoria", "Melbourne", -37.8136, 144.9631),
        ],
    ),
    (
        "SE",
        2,
        &[
            ("Stockholm", "Stockholm", 59.3293, 18.0686),
            ("Västra Götaland", "Gothenburg", 57.7089, 11.9746),
        ],
    ),
    (
        "PL",
        2,
        &[
            ("Masovia", "Warsaw", 52.2297, 21.0122),
            ("Lesser Poland", "Kraków", 50.0647, 19.9450),
        ],
    ),
    (
        "KR",
        2,
        &[
            ("Seoul", "Seoul", 37.5665, 126.9780),
            ("Busan", "Busan", 35.1796, 129.0756),
        ],
    ),
    (
        "ZA",
        1,
        &[
            ("Gauteng", "Johannesburg", -26.2041, 28.0473),
            ("Western Cape", "Cape Town", -33.9249, 18.4241),
        ],
    ),
];
