"""Fixed Indian reference data the generator samples from: cities with their real states, catalogue, copy.

Kept as plain literals so output never depends on a library's bundled word lists changing.
"""

from __future__ import annotations

# (city, state, first three digits of its pincodes, relative share of customers)
CITIES: list[tuple[str, str, int, float]] = [
    ("Mumbai", "Maharashtra", 400, 9.0),
    ("Pune", "Maharashtra", 411, 4.5),
    ("Nagpur", "Maharashtra", 440, 1.5),
    ("New Delhi", "Delhi", 110, 9.0),
    ("Noida", "Uttar Pradesh", 201, 2.0),
    ("Gurugram", "Haryana", 122, 2.5),
    ("Bengaluru", "Karnataka", 560, 8.5),
    ("Mysuru", "Karnataka", 570, 1.0),
    ("Chennai", "Tamil Nadu", 600, 5.0),
    ("Coimbatore", "Tamil Nadu", 641, 1.5),
    ("Madurai", "Tamil Nadu", 625, 1.0),
    ("Hyderabad", "Telangana", 500, 6.0),
    ("Kolkata", "West Bengal", 700, 5.0),
    ("Ahmedabad", "Gujarat", 380, 3.5),
    ("Surat", "Gujarat", 395, 2.0),
    ("Vadodara", "Gujarat", 390, 1.2),
    ("Jaipur", "Rajasthan", 302, 2.5),
    ("Udaipur", "Rajasthan", 313, 0.6),
    ("Lucknow", "Uttar Pradesh", 226, 2.2),
    ("Kanpur", "Uttar Pradesh", 208, 1.2),
    ("Chandigarh", "Chandigarh", 160, 1.2),
    ("Ludhiana", "Punjab", 141, 1.0),
    ("Amritsar", "Punjab", 143, 0.7),
    ("Indore", "Madhya Pradesh", 452, 1.5),
    ("Bhopal", "Madhya Pradesh", 462, 1.2),
    ("Patna", "Bihar", 800, 1.4),
    ("Bhubaneswar", "Odisha", 751, 1.0),
    ("Guwahati", "Assam", 781, 1.0),
    ("Kochi", "Kerala", 682, 1.3),
    ("Thiruvananthapuram", "Kerala", 695, 0.9),
    ("Visakhapatnam", "Andhra Pradesh", 530, 1.1),
    ("Vijayawada", "Andhra Pradesh", 520, 0.8),
    ("Dehradun", "Uttarakhand", 248, 0.7),
    ("Ranchi", "Jharkhand", 834, 0.7),
    ("Raipur", "Chhattisgarh", 492, 0.7),
    ("Panaji", "Goa", 403, 0.4),
    ("Srinagar", "Jammu and Kashmir", 190, 0.4),
    ("Shimla", "Himachal Pradesh", 171, 0.3),
]

EMAIL_DOMAINS: list[tuple[str, float]] = [
    ("gmail.com", 0.62),
    ("yahoo.co.in", 0.12),
    ("outlook.com", 0.09),
    ("rediffmail.com", 0.07),
    ("hotmail.com", 0.05),
    ("icloud.com", 0.05),
]


class Category:
    """One catalogue category: its subcategories (with item nouns), brands, adjectives and price band."""

    def __init__(
        self,
        name,
        share,
        subcategories,
        brands,
        adjectives,
        median_price,
        price_sigma,
        min_price,
        max_price,
        median_weight_g,
    ):
        self.name = name
        self.share = share
        self.subcategories: dict[str, list[str]] = subcategories
        self.brands: list[str] = brands
        self.adjectives: list[str] = adjectives
        self.median_price = median_price
        self.price_sigma = price_sigma
        self.min_price = min_price
        self.max_price = max_price
        self.median_weight_g = median_weight_g


CATEGORIES: list[Category] = [
    Category(
        "Electronics",
        0.15,
        {
            "Smartphones": ["Smartphone", "5G Phone"],
            "Laptops": ["Laptop", "Notebook", "Chromebook"],
            "Headphones & Earbuds": ["Wireless Earbuds", "Neckband", "Over-Ear Headphones"],
            "Smartwatches": ["Smartwatch", "Fitness Band"],
            "Televisions": ["Smart TV 43 inch", "Smart TV 55 inch", "LED TV 32 inch"],
        },
        ["Samsung", "Xiaomi", "OnePlus", "Realme", "boAt", "Noise", "Lenovo", "HP", "Sony", "Vivo"],
        ["Pro", "Lite", "Max", "Neo", "Ultra", "Plus"],
        6999,
        1.1,
        499,
        129999,
        450,
    ),
    Category(
        "Fashion",
        0.22,
        {
            "Men's Clothing": ["Cotton Shirt", "Slim Fit Jeans", "Polo T-Shirt", "Chinos"],
            "Women's Ethnic Wear": ["Kurta Set", "Saree", "Anarkali Kurti", "Lehenga"],
            "Footwear": ["Running Shoes", "Sneakers", "Kolhapuri Chappals", "Loafers"],
            "Watches & Accessories": ["Analog Watch", "Leather Wallet", "Sunglasses", "Handbag"],
        },
        ["Biba", "FabIndia", "W", "Manyavar", "Allen Solly", "Levi's", "Roadster", "Puma", "Bata", "Titan"],
        ["Classic", "Festive", "Casual", "Printed", "Embroidered", "Premium"],
        899,
        0.7,
        199,
        9999,
        400,
    ),
    Category(
        "Home & Kitchen",
        0.15,
        {
            "Cookware": ["Pressure Cooker 3L", "Non-Stick Kadai", "Tawa", "Steel Casserole"],
            "Kitchen Appliances": ["Mixer Grinder", "Induction Cooktop", "Electric Kettle", "Air Fryer"],
            "Home Decor": ["Wall Clock", "Brass Diya Set", "Table Lamp", "Photo Frame"],
            "Furnishing": ["Double Bedsheet", "Curtain Set", "Cushion Covers", "Dohar"],
        },
        ["Prestige", "Pigeon", "Hawkins", "Milton", "Bajaj", "Havells", "Butterfly", "Cello", "Bombay Dyeing"],
        ["Classic", "Deluxe", "Smart", "Premium", "Essential"],
        1299,
        0.9,
        149,
        24999,
        1500,
    ),
    Category(
        "Beauty & Personal Care",
        0.12,
        {
            "Skincare": ["Face Wash", "Sunscreen SPF 50", "Vitamin C Serum", "Moisturiser"],
            "Haircare": ["Onion Hair Oil", "Anti-Dandruff Shampoo", "Hair Serum"],
            "Makeup": ["Kajal", "Matte Lipstick", "Compact Powder"],
            "Fragrances": ["Eau de Parfum", "Deodorant", "Attar"],
        },
        ["Lakme", "Himalaya", "Mamaearth", "Biotique", "Nykaa", "Plum", "WOW", "Forest Essentials"],
        ["Natural", "Herbal", "Ayurvedic", "Daily", "Intense"],
        349,
        0.6,
        79,
        2999,
        200,
    ),
    Category(
        "Books",
        0.10,
        {
            "Fiction": ["Novel", "Short Stories", "Thriller"],
            "Non-Fiction": ["Biography", "Self-Help Guide", "History of India"],
            "Exam Preparation": ["UPSC Guide", "JEE Practice Book", "NEET Question Bank"],
            "Children's Books": ["Picture Book", "Panchatantra Tales", "Activity Book"],
        },
        ["Penguin India", "HarperCollins India", "Rupa", "Arihant", "Westland", "Scholastic India"],
        ["Bestselling", "Illustrated", "Collector's", "Revised", "Paperback"],
        299,
        0.5,
        99,
        1499,
        350,
    ),
    Category(
        "Sports & Fitness",
        0.08,
        {
            "Cricket": ["Kashmir Willow Bat", "Leather Ball", "Batting Gloves"],
            "Badminton": ["Racquet", "Shuttlecock Pack"],
            "Fitness Equipment": ["Dumbbell Set", "Resistance Bands", "Skipping Rope"],
            "Yoga": ["Yoga Mat", "Yoga Block"],
        },
        ["SG", "SS", "Yonex", "Li-Ning", "Cosco", "Nivia", "Boldfit", "Decathlon"],
        ["Pro", "Training", "Match", "Lightweight", "Heavy Duty"],
        799,
        0.8,
        99,
        14999,
        800,
    ),
    Category(
        "Grocery",
        0.10,
        {
            "Staples": ["Basmati Rice 5kg", "Chakki Atta 10kg", "Toor Dal 1kg"],
            "Snacks": ["Bhujia 1kg", "Namkeen Combo", "Cookies Family Pack"],
            "Beverages": ["Masala Chai 500g", "Filter Coffee 500g", "Green Tea 100 Bags"],
            "Spices & Masalas": ["Garam Masala", "Kitchen King Masala", "Haldi Powder"],
        },
        ["Tata", "Aashirvaad", "Fortune", "Amul", "Haldiram's", "MDH", "Everest", "Patanjali"],
        ["Classic", "Organic", "Premium", "Family Pack", "Value"],
        249,
        0.7,
        29,
        1999,
        900,
    ),
    Category(
        "Toys & Baby",
        0.08,
        {
            "Educational Toys": ["Building Blocks", "Puzzle Set", "STEM Kit"],
            "Board Games": ["Ludo", "Business Board Game", "Chess Set"],
            "Baby Care": ["Diaper Pack", "Baby Lotion", "Baby Wipes"],
            "Remote Control Toys": ["RC Car", "RC Helicopter"],
        },
        ["Funskool", "Hamleys", "Mattel", "LEGO", "Chicco", "Pampers", "Himalaya BabyCare"],
        ["Junior", "Classic", "Deluxe", "Mini", "Mega"],
        699,
        0.8,
        99,
        7999,
        600,
    ),
]

WAREHOUSES = ["WH-MUM", "WH-DEL", "WH-BLR"]

ORDER_STATUSES = ["created", "approved", "shipped", "delivered", "cancelled", "returned"]

PAYMENT_TYPES: list[tuple[str, float]] = [
    ("upi", 0.42),
    ("credit_card", 0.14),
    ("debit_card", 0.12),
    ("net_banking", 0.06),
    ("cod", 0.18),
    ("wallet", 0.08),
]

EVENT_TYPES = ["page_view", "product_view", "cart_add", "cart_remove", "checkout", "purchase"]
PAGE_TYPES = ["home", "category", "product", "search", "cart", "checkout", "order_confirmation"]
DEVICES: list[tuple[str, float]] = [("mobile", 0.68), ("desktop", 0.25), ("tablet", 0.07)]
BROWSERS = ["chrome", "safari", "firefox", "edge", "samsung_internet", "opera"]
# Browser mix per device, in DEVICES order: phones run Chrome and Samsung Internet, desktops add Edge/Firefox.
BROWSER_SHARE_BY_DEVICE = [
    [0.62, 0.14, 0.01, 0.00, 0.18, 0.05],
    [0.66, 0.10, 0.08, 0.14, 0.00, 0.02],
    [0.50, 0.38, 0.02, 0.02, 0.06, 0.02],
]
# None means no UTM tag on the landing URL.
UTM_SOURCES: list[tuple[str | None, float]] = [
    (None, 0.25),
    ("google", 0.25),
    ("direct", 0.15),
    ("instagram", 0.12),
    ("facebook", 0.10),
    ("whatsapp", 0.07),
    ("email", 0.06),
]

REVIEW_TITLES: dict[int, list[str]] = {
    1: ["Very disappointed", "Waste of money", "Poor quality", "Not as described", "Stopped working in a week"],
    2: ["Not worth the price", "Below expectations", "Packaging was damaged", "Could be better"],
    3: ["Okay product", "Decent for the price", "Average", "Mixed feelings"],
    4: ["Good product", "Value for money", "Happy with the purchase", "Nice quality", "Worth buying"],
    5: [
        "Excellent!",
        "Loved it",
        "Superb quality",
        "Highly recommended",
        "Paisa vasool!",
        "Fast delivery, great product",
    ],
}

CAMPAIGN_TYPES = ["promotional", "newsletter", "cart_abandonment", "reactivation", "festival"]
CAMPAIGN_NAMES: dict[str, list[str]] = {
    "promotional": [
        "Weekend Mega Sale",
        "End of Season Sale",
        "Flash Sale Friday",
        "Brand Bonanza",
        "Mega Savings Week",
    ],
    "newsletter": ["VyaparBazaar Weekly Picks", "New Arrivals Roundup", "Trending This Week"],
    "cart_abandonment": ["Cart Reminder", "Complete Your Order", "Your Cart Misses You"],
    "reactivation": ["We Miss You", "Welcome Back Offer", "Come Back Bonanza"],
    "festival": [
        "Diwali Dhamaka Sale",
        "Navratri Utsav Offers",
        "Dhanteras Gold Rush",
        "Dussehra Mega Deals",
        "Great Indian Festive Sale",
        "Bhai Dooj Gift Store",
        "Karva Chauth Specials",
    ],
}
SUBJECT_LINES: dict[str, list[str]] = {
    "promotional": ["Flat 50% off on top brands", "Deals that end at midnight", "Extra 10% off with UPI"],
    "newsletter": ["This week's top picks for you", "New arrivals you'll love", "What India is buying now"],
    "cart_abandonment": ["You left something in your cart", "Still thinking it over?", "Your cart is about to expire"],
    "reactivation": [
        "We miss you! Here's Rs 200 off",
        "It's been a while - 20% off inside",
        "Your favourites are back in stock",
    ],
    "festival": [
        "Lights, deals, Diwali! Up to 70% off",
        "Your festive wishlist is on sale",
        "Shubh deals for a shubh season",
        "Gift happiness this festive season",
    ],
}

# Diwali (IST date) by year: the peak of the Oct-Nov festive shopping season.
DIWALI_DATES = {
    2023: "2023-11-12",
    2024: "2024-11-01",
    2025: "2025-10-20",
    2026: "2026-11-08",
    2027: "2027-10-29",
    2028: "2028-10-17",
    2029: "2029-11-05",
    2030: "2030-10-26",
}
