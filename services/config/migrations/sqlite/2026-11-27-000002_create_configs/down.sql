DROP TABLE configs;
